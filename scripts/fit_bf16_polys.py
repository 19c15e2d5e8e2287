"""Fits the two polynomials the AMX bf16 path evaluates where its result is rounded to bf16
(crates/kernels/src/x86.rs: `gelu_bf16_512`, `exp2_bf16_512`), and prints their float32
coefficients and worst errors evaluated in float32 arithmetic.

Run: .venv/bin/python scripts/fit_bf16_polys.py (numpy only).

- GELU: Φ(x) − 1/2 = x·Q(u), u = (x/c)², x clamped to [−c, c] with c = 4.5; Q of degree 8,
  a Chebyshev least-squares fit with iterative reweighting towards minimax of the GELU's
  absolute error. Result: |error| < 1e-4 on [−20, 20] (bf16 keeps 8 bits: the rounding of a
  value near 1 is 4e-3).
- exp2: 2^f on [−1/2, 1/2], degree 4, minimax-like in relative error: < 3e-6.
"""
import math
from math import comb

import numpy as np
from numpy.polynomial import chebyshev as C

erf = np.vectorize(math.erf)


def to_monomial(cheb, scale, shift):
    """Chebyshev coefficients in v = scale·u + shift → monomial coefficients in u."""
    pv = C.cheb2poly(cheb)
    out = np.zeros(len(pv))
    for k, a in enumerate(pv):
        for j in range(k + 1):
            out[j] += a * comb(k, j) * scale**j * shift ** (k - j)
    return out


def reweighted_fit(v, y, deg, w):
    ww = np.ones_like(v)
    for _ in range(100):
        cc = C.chebfit(v, y, deg, w=w * ww)
        err = (C.chebval(v, cc) - y) * w
        ww = ww * (np.abs(err) / np.abs(err).max()) ** 0.25 + 1e-6
    return cc


def horner32(coef, u):
    p = np.float32(coef[-1])
    for k in coef[-2::-1]:
        p = (p * u + np.float32(k)).astype(np.float32)
    return p


nodes = np.cos(np.pi * (np.arange(4000) + 0.5) / 4000)

c = 4.5
u = (nodes + 1) / 2
x = c * np.sqrt(u)
q = 0.5 * erf(x / np.sqrt(2)) / np.maximum(x, 1e-30)
gelu = to_monomial(reweighted_fit(2 * u - 1, q, 8, np.maximum(x * x, 0.05)), 2.0, -1.0).astype(np.float32)
xs = np.linspace(-20, 20, 400001).astype(np.float32)
xc = np.clip(xs, -c, c)
y = (xc * np.float32(1 / c)).astype(np.float32)
g = xs * (xc * horner32(gelu, (y * y).astype(np.float32)) + np.float32(0.5))
exact = xs.astype(np.float64) * 0.5 * (1 + erf(xs.astype(np.float64) / math.sqrt(2)))
print("gelu Q(u), c = 4.5:", [float(v) for v in gelu])
print("gelu max |error| on [-20, 20]: %.2e" % np.abs(g - exact).max())

f = nodes * 0.5
exp2 = to_monomial(reweighted_fit(2 * f, 2.0**f, 4, 2.0**-f), 2.0, 0.0).astype(np.float32)
fs = np.linspace(-0.5, 0.5, 100001).astype(np.float32)
print("exp2 P(f):", [float(v) for v in exp2])
print("exp2 max relative error: %.2e" % np.abs(horner32(exp2, fs) / 2.0 ** fs.astype(np.float64) - 1).max())

//! The CPU level the kernels run at: detected once (CPUID, and the OS's permission for AMX),
//! capped by `BERTKIT_CPU`, and the table of which GEMM precision is fastest at each level.

use std::sync::OnceLock;

/// The instruction set the kernels run with on this CPU, lowest first (`Ord` follows capability).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Anything else: portable loops (correct, not fast).
    Portable,
    /// AVX2 and FMA: fp32 kernels.
    Avx2,
    /// AVX2 and FMA plus AVX-VNNI (`vpdpbusd` on ymm: Intel Alder Lake and later clients, the
    /// Xeon 6 E-core Sierra Forest): the AVX2 kernels, with int8 products on AVX-VNNI. The only
    /// level that is not a subset of the ones above it (Skylake-X has AVX-512 without any VNNI):
    /// its own kernels run at this level only, see [`avx_vnni`].
    Avx2Vnni,
    /// AVX-512F: fp32 kernels (bf16 requests fall back to fp32).
    Avx512,
    /// AVX-512F and AVX512-BF16: fp32 and bf16 kernels.
    Avx512Bf16,
    /// AVX512-BF16 plus AMX-BF16 tiles (with the OS's permission): bf16 GEMMs on tiles.
    Amx,
}

impl Isa {
    /// Whether bf16 GEMM operands are supported (otherwise bf16 requests run in fp32).
    pub fn bf16(self) -> bool {
        self >= Isa::Avx512Bf16
    }

    /// Whether the level's widest vectors are AVX2's (the 256-bit FMA kernels run).
    pub fn avx2_kernels(self) -> bool {
        matches!(self, Isa::Avx2 | Isa::Avx2Vnni)
    }

    /// Every level, highest first.
    pub const ALL: [Isa; 6] = [Isa::Amx, Isa::Avx512Bf16, Isa::Avx512, Isa::Avx2Vnni, Isa::Avx2, Isa::Portable];

    /// The `BERTKIT_CPU` name of this level.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx2Vnni => "avx2-vnni",
            Isa::Avx512 => "avx512",
            Isa::Avx512Bf16 => "avx512-bf16",
            Isa::Amx => "amx",
        }
    }

    /// Parses a `BERTKIT_CPU` value.
    pub fn from_name(name: &str) -> Result<Self, String> {
        Isa::ALL.into_iter().find(|l| l.name() == name).ok_or_else(|| {
            format!("BERTKIT_CPU={name:?} is not a CPU level; expected one of amx, avx512-bf16, avx512, avx2-vnni, avx2, portable")
        })
    }
}

/// The level the CPU supports, before any `BERTKIT_CPU` cap.
pub fn detected_isa() -> Isa {
    static DETECTED: OnceLock<Isa> = OnceLock::new();
    *DETECTED.get_or_init(detect)
}

/// Validates `BERTKIT_CPU` (for the binary to report a typo as an error before any work).
pub fn check_cpu_env() -> Result<(), String> {
    match std::env::var("BERTKIT_CPU") {
        Ok(v) if !v.is_empty() => Isa::from_name(&v).map(|_| ()),
        _ => Ok(()),
    }
}

/// Whether this CPU can run `level`: at or below the detected level, and for `avx2-vnni` the
/// CPU's AVX-VNNI (an AVX-512 CPU may lack it).
pub fn runs(level: Isa) -> bool {
    runs_on(level, detected_isa(), has_avx_vnni())
}

fn runs_on(level: Isa, detected: Isa, avx_vnni: bool) -> bool {
    level <= detected && (level != Isa::Avx2Vnni || avx_vnni)
}

/// The highest level at or below `forced` that a CPU (its detected level, whether it has
/// AVX-VNNI) runs.
fn cap(forced: Isa, detected: Isa, avx_vnni: bool) -> Isa {
    Isa::ALL.into_iter().find(|&l| l <= forced && runs_on(l, detected, avx_vnni)).unwrap_or(Isa::Portable)
}

/// Detected once, then capped by `BERTKIT_CPU` (tests and benches force lower levels; a level
/// this CPU cannot run falls to the highest one below it that it can, and an unknown name is
/// ignored here: the binary rejects it up front through [`check_cpu_env`]).
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let detected = detected_isa();
        match std::env::var("BERTKIT_CPU").ok().and_then(|v| Isa::from_name(&v).ok()) {
            Some(forced) => cap(forced, detected, has_avx_vnni()),
            None => detected,
        }
    })
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Isa {
    let avx512 = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("fma");
    if avx512 && is_x86_feature_detected!("avx512bf16") {
        if crate::amx::usable() { Isa::Amx } else { Isa::Avx512Bf16 }
    } else if avx512 {
        Isa::Avx512
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        if has_avx_vnni() { Isa::Avx2Vnni } else { Isa::Avx2 }
    } else {
        Isa::Portable
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Isa {
    Isa::Portable
}

#[cfg(target_arch = "x86_64")]
fn has_avx_vnni() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("avxvnni")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx_vnni() -> bool {
    false
}

/// Whether int8 GEMMs run on AMX-INT8 tiles (the AMX level and the CPU's AMX-INT8).
pub fn amx_int8() -> bool {
    static AMX_INT8: OnceLock<bool> = OnceLock::new();
    *AMX_INT8.get_or_init(|| isa() == Isa::Amx && crate::amx::int8_usable())
}

/// Whether int8 GEMMs run on AVX-VNNI (the `avx2-vnni` level, which [`isa`] reaches only on a CPU
/// that has it). AVX-512 CPUs with VNNI use [`vnni`]'s wider kernel instead.
pub fn avx_vnni() -> bool {
    isa() == Isa::Avx2Vnni
}

/// Whether int8 GEMMs without tiles run on AVX512-VNNI (`vpdpbusd`): an AVX-512 level and the
/// CPU's VNNI (Intel Cascade Lake and later, AMD Zen 4 and later). `BERTKIT_CPU=avx2` or below
/// turns it off with the rest of AVX-512.
pub fn vnni() -> bool {
    static VNNI: OnceLock<bool> = OnceLock::new();
    *VNNI.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            isa() >= Isa::Avx512 && !amx_int8() && is_x86_feature_detected!("avx512vnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Whether bf16 GEMM operands beat fp32 on this CPU, from measurements (docs/benchmarks.md):
/// on AMX tiles bf16 GEMMs ran 2.5–3.5x fp32 (Sapphire Rapids, 2026-12-01); with AVX512-BF16
/// alone, AMD Zen 5 fine-tuned 1.44–1.85x faster in bf16, while Intel Sapphire Rapids ran
/// `vdpbf16ps` slower than fp32 FMAs (136 against 220 GFLOP/s, 2026-12-01).
pub fn bf16_is_faster() -> bool {
    match isa() {
        Isa::Amx => true,
        Isa::Avx512Bf16 => cpu_vendor_is_amd(),
        Isa::Avx512 | Isa::Avx2Vnni | Isa::Avx2 | Isa::Portable => false,
    }
}

#[cfg(target_arch = "x86_64")]
fn cpu_vendor_is_amd() -> bool {
    let v = std::arch::x86_64::__cpuid(0);
    // "AuthenticAMD" in EBX, EDX, ECX order.
    [v.ebx, v.edx, v.ecx] == [0x6874_7541, 0x6974_6e65, 0x444d_4163]
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_vendor_is_amd() -> bool {
    false
}

/// The running test's name (the test harness names each test's thread after it), for skip lines.
#[cfg(test)]
pub(crate) fn test_name() -> String {
    std::thread::current().name().unwrap_or("a test").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_round_trip_and_typos_are_errors() {
        for l in Isa::ALL {
            assert_eq!(Isa::from_name(l.name()), Ok(l));
        }
        assert_eq!(Isa::from_name("avx2-vnni"), Ok(Isa::Avx2Vnni));
        let err = Isa::from_name("avx-512").unwrap_err();
        assert!(err.contains("avx-512") && err.contains("portable"), "{err}");
        assert!(Isa::Amx.bf16() && Isa::Avx512Bf16.bf16() && !Isa::Avx512.bf16() && !Isa::Avx2.bf16());
        assert!(Isa::Portable < Isa::Avx2 && Isa::Avx2 < Isa::Avx2Vnni && Isa::Avx2Vnni < Isa::Avx512);
        assert!(Isa::Avx2.avx2_kernels() && Isa::Avx2Vnni.avx2_kernels() && !Isa::Avx512.avx2_kernels() && !Isa::Portable.avx2_kernels());
        assert!(Isa::ALL.windows(2).all(|w| w[0] > w[1]), "ALL is highest first");
    }

    #[test]
    fn a_forced_level_falls_to_the_highest_one_the_cpu_runs() {
        // Skylake-X: AVX-512 without any VNNI, so `avx2-vnni` runs as `avx2`.
        assert_eq!(cap(Isa::Avx2Vnni, Isa::Avx512, false), Isa::Avx2);
        // Sapphire Rapids has AVX-VNNI below its AMX.
        assert_eq!(cap(Isa::Avx2Vnni, Isa::Amx, true), Isa::Avx2Vnni);
        assert_eq!(cap(Isa::Avx512Bf16, Isa::Amx, true), Isa::Avx512Bf16);
        // Above the CPU: its own level (Alder Lake asked for AMX; Zen 2 asked for avx512).
        assert_eq!(cap(Isa::Amx, Isa::Avx2Vnni, true), Isa::Avx2Vnni);
        assert_eq!(cap(Isa::Avx512, Isa::Avx2, false), Isa::Avx2);
        assert_eq!(cap(Isa::Portable, Isa::Amx, true), Isa::Portable);
    }

    #[test]
    fn the_level_never_exceeds_what_the_cpu_has() {
        assert!(isa() <= detected_isa() && runs(isa()));
        // avx2-vnni only where the CPU has AVX-VNNI, whatever BERTKIT_CPU asks for.
        assert!(isa() != Isa::Avx2Vnni || has_avx_vnni());
        assert_eq!(avx_vnni(), isa() == Isa::Avx2Vnni);
    }
}

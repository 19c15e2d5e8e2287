#!/usr/bin/env python3
"""Drives `bertkit serve`'s Open Inference Protocol (V2) routes with the two Python clients users
have, unchanged: tritonclient[http] (binary tensor data, its default) and kserve's
InferenceRESTClient (JSON). Starts the server on a free port, checks liveness, readiness and
metadata, scores five texts through each client, and compares the probabilities with
`bertkit predict --json` (same engine); a sentence-pair model gets five second texts as
`text_pair`. Prints one JSON line; exits 1 on any difference above
1e-6 or any failed call. The clients live in the reference venv (.venv), not in CI.

  .venv/bin/python scripts/v2_clients.py runs/demo [target/release/bertkit]
"""
import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import tritonclient.http as triton
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

model_dir = sys.argv[1]
bertkit = sys.argv[2] if len(sys.argv) > 2 else "target/release/bertkit"
texts = ["this is such an amazing movie!", "The movie was great!", "The movie was meh.",
         "The movie was okish.", "The movie was terrible..."]
name = "imdb"
# A sentence-pair model gets a second BYTES input, `text_pair`.
pairs = ["I loved the acting.", "It dragged on forever.", "Not for me.", "Two thumbs up.",
         "Avoid it."] if json.load(open(f"{model_dir}/bertkit.json")).get("text_pairs") else None

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
server = subprocess.Popen([bertkit, "serve", "--model", model_dir, "--name", name, "--port", str(port),
                           "--engine", "kernels"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
try:
    url = f"127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://{url}/v2/health/ready", timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    pair_args = [a for p in pairs for a in ("--pair", p)] if pairs else []
    out = subprocess.run([bertkit, "predict", "--json", "--engine", "kernels", "--model", model_dir, *pair_args, *texts],
                         check=True, capture_output=True, text=True).stdout
    predictions = json.loads(out)["predictions"]
    want = np.array([p["scores"] for p in predictions], dtype=np.float32)
    want_labels = [",".join(p["labels"]) if "labels" in p else p["label"] for p in predictions]

    # tritonclient: binary request data by default, JSON outputs asked for as binary.
    t = triton.InferenceServerClient(url=url)
    assert t.is_server_live() and t.is_server_ready() and t.is_model_ready(name)
    meta = t.get_model_metadata(name)
    inputs = []
    for input_name, values in (("text", texts), ("text_pair", pairs)):
        if values:
            inp = triton.InferInput(input_name, [len(values)], "BYTES")
            inp.set_data_from_numpy(np.array([x.encode() for x in values], dtype=object))
            inputs.append(inp)
    result = t.infer(name, inputs)
    triton_probs = result.as_numpy("probabilities")
    label_out = "labels" if meta["parameters"]["multi_label"] else "label"
    triton_labels = [x.decode() if isinstance(x, bytes) else x for x in result.as_numpy(label_out)]

    # kserve: JSON over httpx, its own request types.
    async def with_kserve():
        client = InferenceRESTClient(RESTConfig(protocol="v2"))
        base = f"http://{url}"
        live, ready = await client.is_server_live(base), await client.is_model_ready(base, name)
        inputs = [InferInput(name=n, shape=[len(v)], datatype="BYTES", data=v)
                  for n, v in (("text", texts), ("text_pair", pairs)) if v]
        res = await client.infer(base, InferRequest(model_name=name, infer_inputs=inputs), model_name=name)
        await client.close()
        probs = next(o for o in res.outputs if o.name == "probabilities").as_numpy()
        return live, ready, probs

    k_live, k_ready, kserve_probs = asyncio.run(with_kserve())
    assert k_live and k_ready
    diffs = {
        "tritonclient": float(np.abs(triton_probs - want).max()),
        "kserve": float(np.abs(np.asarray(kserve_probs, dtype=np.float32).reshape(want.shape) - want).max()),
    }
    labels_match = [l.replace(";", ",") for l in triton_labels] == want_labels
    print(json.dumps({"model": model_dir, "max_abs_diff": diffs, "labels_match": labels_match,
                      "metadata_outputs": [o["name"] for o in meta["outputs"]],
                      "tritonclient": triton.__name__, "kserve_client": "InferenceRESTClient"}))
    ok = max(diffs.values()) <= 1e-6 and labels_match
finally:
    server.terminate()
    server.wait(timeout=30)
sys.exit(0 if ok else 1)

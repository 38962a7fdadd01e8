#!/usr/bin/python3
"""Fits models/power.h: GPU power (fraction of TDP) = idle + slope x utilisation, on the Splitwise
perf model's measured average power. Usage: tools/fit_power.py [PERF_MODEL_CSV]
(default: ../shared/data/profiles/splitwise/perf_model.csv beside the source tree).

Each row is one batch run to completion: a prefill of prompt_size tokens per request, then
token_size decode steps. Its MFU and MBU per GPU come from the model's shapes (parameters, layers,
KV heads) over the A100-80GB's peak (312 TFLOPS bf16, 2.039 TB/s), and the fit is least squares of
average_power on max(MFU, MBU), which is MBU in every row (the runs are decode-bound)."""
import csv
import os
import sys

import numpy as np

PEAK_FLOPS = 312e12
HBM_BYTES_PER_S = 2039e9
# Parameters, layers, query heads, KV heads, head dim (model cards).
MODELS = {
    "llama2-70b": (68.98e9, 80, 64, 8, 128),
    "bloom-176b": (176.2e9, 70, 112, 112, 128),
}


def utilisation(row):
    params, layers, heads, kv_heads, head_dim = MODELS[row["model"]]
    tp = int(row["tensor_parallel"])
    batch, prompt, out = int(row["batch_size"]), int(row["prompt_size"]), int(row["token_size"])
    prefill_s = float(row["prompt_time"]) / 1e3
    step_s = float(row["token_time"]) / 1e3
    kv_bytes_per_token = 2 * layers * kv_heads * head_dim * 2
    attention_flops_per_pair = 4 * layers * heads * head_dim
    # Keys attended over: prompt^2 / 2 in prefill, prompt + j at decode step j.
    prefill_pairs = batch * prompt * prompt / 2
    decode_pairs = batch * (prompt * out + out * out / 2)
    flops = (2 * params * batch * (prompt + out)
             + attention_flops_per_pair * (prefill_pairs + decode_pairs))
    hbm_bytes = 2 * params * (1 + out) + kv_bytes_per_token * (batch * prompt + decode_pairs)
    span_s = prefill_s + out * step_s
    return flops / tp / (PEAK_FLOPS * span_s), hbm_bytes / tp / (HBM_BYTES_PER_S * span_s)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "..", "..", "shared", "data", "profiles", "splitwise", "perf_model.csv")
    rows = [r for r in csv.DictReader(open(path)) if float(r["average_power"]) > 0]
    u = np.array([max(utilisation(r)) for r in rows])
    power = np.array([float(r["average_power"]) for r in rows])
    design = np.column_stack([np.ones_like(u), u])
    (idle, slope), *_ = np.linalg.lstsq(design, power, rcond=None)
    rms = float(np.sqrt(np.mean((design @ [idle, slope] - power) ** 2)))
    print(f"rows {len(rows)}  utilisation {u.min():.2f}-{u.max():.2f}")
    print(f"kIdleFraction = {idle:.4f}  kSlope = {slope:.4f}  rms residual {rms:.3f} of TDP")


if __name__ == "__main__":
    main()

"""The fitting machinery behind tools/fit_kernels.py: reading the measured kernel tables and GPU
peaks, the closed forms and their fits (Levenberg-Marquardt on log error, linear least squares on
relative error), and k-fold held-out error. Needs numpy only.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field

import numpy as np

KFOLD = 5
SEED = 20240607

# ----------------------------------------------------------------------------------------------
# loading

def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@dataclass
class Peaks:
    bf16_flops: float
    fp8_flops: float  # 0 when the GPU has no fp8 tensor cores
    hbm_bytes_per_s: float
    nvlink_per_dir_bytes_per_s: float


def load_peaks(shared, row_name):
    for r in read_csv(os.path.join(shared, "data/hardware/gpus.csv")):
        if r["gpu"] == row_name:
            def num(s):
                try:
                    return float(s.split()[0])
                except (ValueError, IndexError):
                    return 0.0
            return Peaks(
                bf16_flops=num(r["fp16_bf16_dense_tflops"]) * 1e12,
                fp8_flops=num(r["fp8_dense_tflops"]) * 1e12,
                hbm_bytes_per_s=num(r["hbm_or_dram_bw_GBps"]) * 1e9,
                nvlink_per_dir_bytes_per_s=num(r["nvlink_per_direction_GBps"]) * 1e9,
            )
    raise KeyError(row_name)


def kdir(shared, folder):
    return os.path.join(shared, "data/kernels/aiconfigurator", folder)


def rel(path, shared):
    return "../shared/" + os.path.relpath(path, shared)


# ----------------------------------------------------------------------------------------------
# models (mirrors models/kernel_fit_eval.cc)

def gemm_pred(p, peak, bw, m, n, k, bpe):
    overhead, ce, m_half, me = p[:4]
    extra = p[4] if len(p) > 4 else 0.0
    compute = 2.0 * n * k * (m + m_half) / (peak * ce)  # == 2mnk / (peak*ce*m/(m+m_half))
    memory = (m * k + k * n + m * n) * bpe / (bw * me)
    return overhead + np.maximum(compute, memory) + extra * m * k / bw


def linear_rel_fit(X, y):
    """min sum(((X b - y) / y)^2) with b >= 0 (small active-set loop)."""
    w = 1.0 / y
    active = list(range(X.shape[1]))
    b = np.zeros(X.shape[1])
    for _ in range(X.shape[1]):
        sol, *_ = np.linalg.lstsq(X[:, active] * w[:, None], np.ones_like(y), rcond=None)
        if np.all(sol >= 0):
            b[:] = 0
            b[active] = sol
            return b
        active = [a for a, s in zip(active, sol) if s >= 0] or active[:1]
    b[:] = 0
    sol, *_ = np.linalg.lstsq(X[:, active] * w[:, None], np.ones_like(y), rcond=None)
    b[active] = np.maximum(sol, 0)
    return b


def mape(pred, y):
    return float(np.mean(np.abs(pred - y) / y) * 100.0)


def kfold_mape(n, fit_fn, pred_fn, y):
    """5-fold held-out MAPE: fit on 4/5 of the rows, score the 1/5 left out, pool the folds."""
    rng = np.random.default_rng(SEED)
    idx = rng.permutation(n)
    folds = np.array_split(idx, KFOLD)
    errs = np.empty(n)
    for f in folds:
        train = np.setdiff1d(idx, f, assume_unique=True)
        p = fit_fn(train)
        errs[f] = np.abs(pred_fn(p, f) - y[f]) / y[f]
    return float(np.mean(errs) * 100.0)


# ----------------------------------------------------------------------------------------------
# GEMM

def lm_fit(resid_fn, x0, iters=200):
    """Levenberg-Marquardt on a residual vector, forward-difference Jacobian."""
    x = np.array(x0, dtype=float)
    r = resid_fn(x)
    cost = float(r @ r)
    lam = 1e-3
    for _ in range(iters):
        J = np.empty((r.size, x.size))
        for j in range(x.size):
            h = 1e-6 * max(1.0, abs(x[j]))
            xp = x.copy()
            xp[j] += h
            J[:, j] = (resid_fn(xp) - r) / h
        A = J.T @ J
        g = J.T @ r
        improved = False
        for _ in range(20):
            step = np.linalg.solve(A + lam * np.diag(np.diag(A) + 1e-12), -g)
            xn = x + step
            rn = resid_fn(xn)
            cn = float(rn @ rn)
            if cn < cost:
                x, r, lam = xn, rn, max(lam / 3.0, 1e-12)
                improved = cost - cn > 1e-12 * cost
                cost = cn
                break
            lam *= 4.0
        if not improved:
            break
    return x, cost


def fit_gemm(m, n, k, y, peak, bw, bpe, extra_pass):
    """Parameters are fitted in log space: log overhead, log ce, log m_half, log me and, with
    extra_pass, log extra_mk_bytes (else 0). Multi-start over a small grid, then refine."""
    logy = np.log(y)

    def unpack(q):
        p = np.exp(q)
        return p if extra_pass else np.append(p, 0.0)

    def resid(q):
        return np.log(gemm_pred(unpack(q), peak, bw, m, n, k, bpe)) - logy

    best = None
    for o0 in (3e-6, 8e-6):
        for ce0 in (0.5, 0.8):
            for mh0 in (16.0, 128.0):
                for me0 in (0.5, 0.8):
                    x0 = [o0, ce0, mh0, me0] + ([4.0] if extra_pass else [])
                    q, c = lm_fit(resid, np.log(x0), iters=60)
                    if best is None or c < best[1]:
                        best = (q, c)
    q, _ = lm_fit(resid, best[0], iters=300)
    return unpack(q)


def gemm_rows(rows, dtype):
    sel = [r for r in rows if r["gemm_dtype"] == dtype]
    m = np.array([float(r["m"]) for r in sel])
    n = np.array([float(r["n"]) for r in sel])
    k = np.array([float(r["k"]) for r in sel])
    y = np.array([float(r["latency"]) for r in sel]) * 1e-3  # ms -> s
    keep = (m >= 1) & (m <= 16384) & (n >= 256) & (k >= 256) & (y > 0)
    return m[keep], n[keep], k[keep], y[keep]


def gemm_study(rows, dtype, peak, bw, bpe, extra_pass):
    m, n, k, y = gemm_rows(rows, dtype)
    if m.size == 0:
        return None
    p = fit_gemm(m, n, k, y, peak, bw, bpe, extra_pass)
    cv = kfold_mape(
        m.size,
        lambda t: fit_gemm(m[t], n[t], k[t], y[t], peak, bw, bpe, extra_pass),
        lambda pp, f: gemm_pred(pp, peak, bw, m[f], n[f], k[f], bpe),
        y,
    )
    train = mape(gemm_pred(p, peak, bw, m, n, k, bpe), y)
    out = dict(params=p, rows=int(m.size), cv=cv, train=train)
    if extra_pass:  # what a consumer that drops the extra pass would see
        out["train_without_extra"] = mape(gemm_pred(np.append(p[:4], 0.0), peak, bw, m, n, k, bpe), y)
        p4 = fit_gemm(m, n, k, y, peak, bw, bpe, False)
        out["train_plain_form"] = mape(gemm_pred(p4, peak, bw, m, n, k, bpe), y)
    return out


# ----------------------------------------------------------------------------------------------
# attention

def decode_rows(rows):
    sel = [
        r for r in rows
        if r.get("window_size", "0") == "0" and r["kv_cache_dtype"] == "bfloat16"
        and int(r["batch_size"]) <= 512
    ]
    b = np.array([float(r["batch_size"]) for r in sel])
    ctx = np.array([float(r["step"]) for r in sel])
    kvh = np.array([float(r["num_key_value_heads"]) for r in sel])
    hd = np.array([float(r["head_dim"]) for r in sel])
    y = np.array([float(r["latency"]) for r in sel]) * 1e-3
    kv_bytes = b * ctx * 2.0 * kvh * hd * 2.0  # K and V, bf16
    return b, kv_bytes, y


def decode_study(rows, bw):
    b, kvb, y = decode_rows(rows)
    X = np.stack([np.ones_like(b), b, kvb / bw], axis=1)
    fit = lambda t: linear_rel_fit(X[t], y[t])  # noqa: E731
    pred = lambda c, f: X[f] @ c  # noqa: E731
    c = fit(np.arange(y.size))
    return dict(
        overhead=c[0], per_request=c[1], eff=(1.0 / c[2]) if c[2] > 0 else float("inf"),
        rows=int(y.size), cv=kfold_mape(y.size, fit, pred, y), train=mape(X @ c, y),
    )


def prefill_rows(rows):
    sel = [
        r for r in rows
        if r.get("window_size", "0") == "0" and r["kv_cache_dtype"] == "bfloat16"
        and int(r["isl"]) >= 16 and int(r["batch_size"]) * int(r["isl"]) <= 65536
    ]
    b = np.array([float(r["batch_size"]) for r in sel])
    isl = np.array([float(r["isl"]) for r in sel])
    h = np.array([float(r["num_heads"]) for r in sel])
    hd = np.array([float(r["head_dim"]) for r in sel])
    y = np.array([float(r["latency"]) for r in sel]) * 1e-3
    # Flop convention: QK^T and PV are each 2*isl^2*head_dim flops (multiply+add) per head,
    # halved for the causal mask: batch * 2 * 2 * num_heads * head_dim * isl^2 / 2.
    flops = b * 2.0 * 2.0 * h * hd * isl * isl / 2.0
    return flops, y


def prefill_over_peak(rows, peak):
    """Fraction of long-prompt rows (isl >= 1024) whose achieved rate, under the labelled shape
    and the flop convention above, exceeds the dense bf16 peak: physically impossible."""
    flops, y = prefill_rows(rows)
    isl_rows = [r for r in rows if r.get("window_size", "0") == "0"
                and r["kv_cache_dtype"] == "bfloat16" and int(r["isl"]) >= 16
                and int(r["batch_size"]) * int(r["isl"]) <= 65536]
    isl = np.array([float(r["isl"]) for r in isl_rows])
    long = isl >= 1024
    return float(np.mean(flops[long] / y[long] > peak)), float(np.max(flops[long] / y[long]) / peak)


def prefill_study(rows, peak):
    flops, y = prefill_rows(rows)
    X = np.stack([np.ones_like(flops), flops / peak], axis=1)
    fit = lambda t: linear_rel_fit(X[t], y[t])  # noqa: E731
    pred = lambda c, f: X[f] @ c  # noqa: E731
    c = fit(np.arange(y.size))
    return dict(
        overhead=c[0], eff=(1.0 / c[1]) if c[1] > 0 else float("inf"),
        rows=int(y.size), cv=kfold_mape(y.size, fit, pred, y), train=mape(X @ c, y),
    )


# ----------------------------------------------------------------------------------------------
# all-reduce

def allreduce_points(nccl_rows, custom_rows, n):
    """Per message size, the faster of NCCL all_reduce (fp16) and vLLM custom all-reduce under
    CUDA graphs (bf16), as an engine that picks its backend per size would run. message_size is
    an element count (NCCL int8 rows take about half the time of fp16 rows of equal size), so
    bytes = 2 * message_size for these 16-bit rows."""
    acc = {}
    for r in nccl_rows:
        if r["op_name"] == "all_reduce" and r["nccl_dtype"] == "half" and int(r["num_gpus"]) == n:
            acc.setdefault(("nccl", int(r["message_size"])), []).append(float(r["latency"]))
    for r in custom_rows:
        if (r["op_name"] == "all_reduce" and r["backend"] == "vllm_graph"
                and int(r["num_gpus"]) == n):
            acc.setdefault(("custom", int(r["message_size"])), []).append(float(r["latency"]))
    best = {}
    for (_, size), lat in acc.items():
        t = float(np.mean(lat)) * 1e-3
        best[size] = min(best.get(size, math.inf), t)
    sizes = np.array(sorted(best), dtype=float)
    y = np.array([best[int(s)] for s in sizes])
    return sizes * 2.0, y


def allreduce_study(nccl_rows, custom_rows, n):
    x, y = allreduce_points(nccl_rows, custom_rows, n)
    X = np.stack([np.ones_like(x), x], axis=1)
    fit = lambda t: linear_rel_fit(X[t], y[t])  # noqa: E731
    pred = lambda c, f: X[f] @ c  # noqa: E731
    c = fit(np.arange(y.size))
    return dict(
        latency=c[0], bw=(1.0 / c[1]) if c[1] > 0 else 0.0, rows=int(y.size),
        # Running maximum: a larger message is never faster; the few inversions at the latency
        # floor are measurement noise, and a monotone curve keeps the step cost monotone.
        points=list(zip(x.tolist(), np.maximum.accumulate(y).tolist())),
        cv=kfold_mape(y.size, fit, pred, y), train=mape(X @ c, y),
    )

#!/usr/bin/python3
"""Fit compact per-GPU kernel-time models to measured kernel latencies.

Reads the aiconfigurator kernel tables under ../shared/data/kernels/aiconfigurator and the GPU
peak figures in ../shared/data/hardware/gpus.csv, fits the closed forms documented in
models/kernel_fit.h, and writes
  models/kernel_fit.cc          the fitted constants (generated; do not edit by hand)
  models/kernel_fit_report.md   5-fold held-out MAPE per op and GPU, fit ranges, roofline check

Usage (from the repository root):  python3 tools/fit_kernels.py [--shared DIR] [--out-dir DIR]
Needs numpy only (a Debian python3-numpy is enough: `/usr/bin/python3 tools/fit_kernels.py`).

Fitting objective: least squares on log(predicted / measured) for the GEMM roofline (non-linear,
Levenberg-Marquardt), and least squares on the relative error (predicted - measured) / measured
for the forms that are linear in their parameters (attention, all-reduce). Both target MAPE.

Fit ranges (rows outside are dropped before fitting and before the k-fold evaluation):
  GEMM: m in 1..16384 (tokens of one forward pass), n >= 256 and k >= 256 (hidden sizes and
        projections of real models; n, k < 256 are not LLM layer shapes).
  Decode attention: window_size 0 (full attention), kv_cache_dtype bfloat16, batch <= 512,
        context (step) <= 131071.
  Prefill attention: window_size 0, kv_cache_dtype bfloat16, isl >= 16 (isl 1 is a decode-like
        degenerate shape), batch * isl <= 65536 tokens (one forward pass of a serving engine).
  All-reduce: all sizes measured (256 B .. 1 GiB per GPU).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from dataclasses import dataclass, field

try:
    import numpy as np
except ImportError:  # pragma: no cover
    sys.exit("fit_kernels.py needs numpy (apt-get install python3-numpy, then /usr/bin/python3)")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# catalogue name -> (aiconfigurator folder, gpus.csv row, vllm version folder, nccl version folder)
GPUS = [
    ("A100-SXM-80", "a100_sxm", "A100-SXM4-80GB", "0.14.0", "2.27.3"),
    ("H100-SXM", "h100_sxm", "H100-SXM5-80GB", "0.19.0", "2.27.3"),
    ("H200", "h200_sxm", "H200-SXM-141GB", "0.19.0", "2.26.2"),
]

# A GPU whose own context-attention table fails the roofline cross-check borrows the prefill
# constants of a GPU with the same compute die (see prefill_over_peak).
PREFILL_FALLBACK = {"H200": "H100-SXM"}

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
        cv=kfold_mape(y.size, fit, pred, y), train=mape(X @ c, y),
    )


# ----------------------------------------------------------------------------------------------
# output

def g(v):
    s = "{:.6g}".format(float(v))
    if "e" not in s and "." not in s and "inf" not in s:
        s += ".0"
    return s


def emit_cc(results, sources, peaks_src, data_flags):
    out = []
    out.append("// Generated by tools/fit_kernels.py; do not edit by hand. Regenerate with")
    out.append("//   python3 tools/fit_kernels.py   (needs numpy)")
    out.append("// Fitted to measured kernel latencies (aiconfigurator, Apache-2.0):")
    for s in sources:
        out.append("//   " + s)
    out.append("// Roofline peaks (dense bf16 / fp8 flops, HBM bandwidth) from")
    out.append("//   " + peaks_src + ".")
    for name, res in results:
        if res["prefill_source"] != name:
            out.append("// %s prefill attention: fitted on the %s context-attention table (the %s table"
                       % (name, res["prefill_source"], name))
            out.append("// fails the roofline cross-check; see models/kernel_fit_report.md).")
    out.append("// Forms, units and fit ranges: models/kernel_fit.h and models/kernel_fit_report.md.")
    out.append("")
    out.append('#include "models/kernel_fit.h"')
    out.append("")
    out.append("namespace servesim {")
    out.append("")
    out.append("namespace {")
    out.append("")
    out.append("constexpr GpuKernelFit kFits[] = {")
    for name, res in results:
        out.append("    {")
        out.append('        "%s",' % name)
        for key in ("gemm_bf16", "gemm_fp8"):
            gm = res[key]
            if gm is None:
                out.append("        GemmFit{},  // %s: not measured (no fp8 tensor cores)" % key)
            else:
                o, ce, mh, me, ex = gm["params"]
                out.append("        GemmFit{%s, %s, %s, %s, %s},  // %s" % (
                    g(o), g(ce), g(mh), g(me), g(ex), key))
        d, p = res["decode"], res["prefill"]
        out.append("        AttentionFit{%s, %s, %s, %s, %s}," % (
            g(d["overhead"]), g(d["per_request"]), g(d["eff"]), g(p["overhead"]), g(p["eff"])))
        out.append("        {AllReduceFit{},  // n = 2, 4, 8 at indices 1, 2, 3")
        for n in (2, 4, 8):
            a = res["allreduce"][n]
            out.append("         AllReduceFit{%s, %s}%s" % (g(a["latency"]), g(a["bw"]), "}," if n == 8 else ","))
        out.append("    },")
    out.append("};")
    out.append("")
    out.append("}  // namespace")
    out.append("")
    out.append("const GpuKernelFit* find_kernel_fit(std::string_view gpu_name) {")
    out.append("  for (const GpuKernelFit& f : kFits) {")
    out.append("    if (f.gpu == gpu_name) return &f;")
    out.append("  }")
    out.append("  return nullptr;")
    out.append("}")
    out.append("")
    out.append("}  // namespace servesim")
    return "\n".join(out) + "\n"


def sanity(results, peaks):
    """Roofline cross-check: fitted efficiencies must lie in (0.3, 1.0]; the all-reduce's implied
    ring bus bandwidth (effective bw * 2(n-1)/n) must not exceed the NVLink per-direction peak."""
    lines, flags = [], []

    def chk(gpu, what, v, lo=0.3, hi=1.0):
        ok = lo < v <= hi
        lines.append("| %s | %s | %.3f | %s |" % (gpu, what, v, "ok" if ok else "**OUT OF RANGE**"))
        if not ok:
            flags.append("%s %s = %.3f outside (%.1f, %.1f]" % (gpu, what, v, lo, hi))

    for name, res in results:
        for key in ("gemm_bf16", "gemm_fp8"):
            if res[key] is not None:
                _, ce, _, me, _ = res[key]["params"]
                chk(name, key + " compute_efficiency", ce)
                chk(name, key + " memory_efficiency", me)
        chk(name, "decode memory_efficiency", res["decode"]["eff"])
        chk(name, "prefill compute_efficiency", res["prefill"]["eff"])
        for n in (2, 4, 8):
            bus = res["allreduce"][n]["bw"] * 2.0 * (n - 1) / n
            chk(name, "allreduce n=%d busbw / NVLink per-dir" % n,
                bus / peaks[name].nvlink_per_dir_bytes_per_s, 0.3, 1.0)
    return lines, flags


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.path.normpath(os.path.join(ROOT, "..", "shared")))
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "models"))
    args = ap.parse_args()
    shared = args.shared
    peaks_path = os.path.join(shared, "data/hardware/gpus.csv")

    results, sources, peaks, paths, data_flags = [], [], {}, {}, []
    for name, folder, row, vver, nver in GPUS:
        base = kdir(shared, folder)
        peaks[name] = load_peaks(shared, row)
        paths[name] = dict(
            gemm=os.path.join(base, "gemm/vllm", vver, "gemm_perf.csv"),
            ctx=os.path.join(base, "attention/vllm", vver, "context_attention_perf.csv"),
            gen=os.path.join(base, "attention/vllm", vver, "generation_attention_perf.csv"),
            nccl=os.path.join(base, "comm/nccl", nver, "nccl_perf.csv"),
            car=os.path.join(base, "comm/vllm", vver, "custom_allreduce_perf.csv"),
        )
        sources.extend(rel(p, shared) for p in paths[name].values())

    for name, _, _, _, _ in GPUS:
        pk, pa = peaks[name], paths[name]
        print("fitting %s ..." % name, file=sys.stderr)
        grows = read_csv(pa["gemm"])
        res = {}
        res["gemm_bf16"] = gemm_study(grows, "bfloat16", pk.bf16_flops, pk.hbm_bytes_per_s, 2.0, False)
        res["gemm_fp8"] = (gemm_study(grows, "fp8", pk.fp8_flops, pk.hbm_bytes_per_s, 1.0, True)
                           if pk.fp8_flops > 0 else None)
        res["decode"] = decode_study(read_csv(pa["gen"]), pk.hbm_bytes_per_s)
        ctx_rows = read_csv(pa["ctx"])
        frac, worst = prefill_over_peak(ctx_rows, pk.bf16_flops)
        res["prefill_source"] = name
        if frac > 0.01 and name in PREFILL_FALLBACK:
            fb = PREFILL_FALLBACK[name]
            data_flags.append(
                "%s: %.0f%% of the long-prompt rows of %s run faster than the dense bf16 peak (worst "
                "%.1fx) under the labelled shape, and latency follows the KV-head count rather than the "
                "query-head count; the table fails the roofline cross-check, so the %s prefill constants "
                "are fitted on the %s table (same GH100 die, same %.0f TFLOPS peak)"
                % (name, frac * 100, rel(pa["ctx"], shared), worst, name, fb, pk.bf16_flops / 1e12))
            ctx_rows = read_csv(paths[fb]["ctx"])
            res["prefill_source"] = fb
        elif frac > 0.01:
            data_flags.append("%s: context attention table exceeds peak on %.0f%% of long rows"
                              % (name, frac * 100))
        res["prefill"] = prefill_study(ctx_rows, pk.bf16_flops)
        nrows, crows = read_csv(pa["nccl"]), read_csv(pa["car"])
        res["allreduce"] = {n: allreduce_study(nrows, crows, n) for n in (2, 4, 8)}
        results.append((name, res))

    # ---- table
    ops = [("gemm bf16", lambda r: r["gemm_bf16"]), ("gemm fp8", lambda r: r["gemm_fp8"]),
           ("decode attention", lambda r: r["decode"]), ("prefill attention", lambda r: r["prefill"])]
    ops += [("all-reduce n=%d" % n, (lambda nn: lambda r: r["allreduce"][nn])(n)) for n in (2, 4, 8)]
    names = [n for n, _ in results]
    table = ["| op | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, getter in ops:
        cells = []
        for _, res in results:  # noqa: B007
            s = getter(res)
            mark = " [rows of %s]" % res["prefill_source"] if (
                label == "prefill attention" and res["prefill_source"] != _) else ""
            cells.append("n/a" if s is None else "%.1f%% (%.1f%%, %d rows)%s" % (
                s["cv"], s["train"], s["rows"], mark))
        table.append("| %s | %s |" % (label, " | ".join(cells)))

    params = ["| GPU | op | fitted constants |", "|---|---|---|"]
    for name, res in results:
        for key in ("gemm_bf16", "gemm_fp8"):
            if res[key] is None:
                params.append("| %s | %s | not measured |" % (name, key))
                continue
            o, ce, mh, me, ex = res[key]["params"]
            params.append("| %s | %s | overhead %.2f us, compute_eff %.3f, m_half %.1f, memory_eff %.3f,"
                          " extra_mk_bytes %.2f |" % (name, key, o * 1e6, ce, mh, me, ex))
        d, p = res["decode"], res["prefill"]
        params.append("| %s | decode attention | overhead %.2f us, per_request %.3f us, memory_eff %.3f |"
                      % (name, d["overhead"] * 1e6, d["per_request"] * 1e6, d["eff"]))
        params.append("| %s | prefill attention | overhead %.2f us, compute_eff %.3f |"
                      % (name, p["overhead"] * 1e6, p["eff"]))
        for n in (2, 4, 8):
            a = res["allreduce"][n]
            params.append("| %s | all-reduce n=%d | latency %.2f us, bw %.1f GB/s (busbw %.1f GB/s) |"
                          % (name, n, a["latency"] * 1e6, a["bw"] / 1e9, a["bw"] * 2 * (n - 1) / n / 1e9))

    san_lines, flags = sanity(results, peaks)
    notes = list(data_flags)
    for name, res in results:
        f8 = res["gemm_fp8"]
        if f8 is not None:
            notes.append(
                "%s fp8 GEMM: in-sample MAPE %.1f%% with the extra activation pass, %.1f%% with the "
                "plain roofline form refitted, %.1f%% if a consumer drops extra_mk_bytes from these "
                "constants" % (name, f8["train"], f8["train_plain_form"], f8["train_without_extra"]))

    print("\n5-fold held-out MAPE (in-sample MAPE, rows fitted)")
    print("\n".join(table))
    print("\nfitted constants")
    print("\n".join(params))
    print("\nroofline sanity")
    print("\n".join(san_lines))
    print("\nflags: " + ("; ".join(flags) if flags else "none"))
    print("\nnotes:\n- " + "\n- ".join(notes))

    peaks_src = "../shared/data/hardware/gpus.csv (rows %s)" % ", ".join(r for _, _, r, _, _ in GPUS)
    cc = emit_cc(results, sources, peaks_src, data_flags)
    with open(os.path.join(args.out_dir, "kernel_fit.cc"), "w") as f:
        f.write(cc)

    md = []
    md.append("# Kernel-time fits")
    md.append("")
    md.append("Generated by `tools/fit_kernels.py`; do not edit by hand. The constants are in")
    md.append("`models/kernel_fit.cc`, the forms in `models/kernel_fit.h`.")
    md.append("")
    md.append("Data: `../shared/data/kernels/aiconfigurator/{a100_sxm,h100_sxm,h200_sxm}` (latency in ms;")
    md.append("vLLM 0.14.0 kernels on A100, 0.19.0 on H100/H200). Peaks: " + peaks_src + ".")
    md.append("")
    md.append("## Forms")
    md.append("")
    md.append("- GEMM: `overhead + max(2mnk / (peak * ce * m/(m+m_half)), (mk+kn+mn) * bpe / (hbm * me))`,")
    md.append("  bpe 2 for bf16, 1 for fp8; fp8 adds `extra_mk_bytes * m * k / hbm`, the separate")
    md.append("  activation-quantization pass of vLLM's fp8 path (fitted; 0 for bf16). Fitted on log")
    md.append("  latency (Levenberg-Marquardt, multi-start).")
    md.append("- Decode attention: `overhead + batch * per_request + kv_bytes / (hbm * eff)`, kv_bytes =")
    md.append("  batch * context * 2 (K,V) * kv_heads * head_dim * 2 B; linear in kv bytes by construction.")
    md.append("- Prefill attention: `overhead + flops / (peak_bf16 * eff)`, flops = batch * 2 * 2 * heads *")
    md.append("  head_dim * isl^2 / 2 (QK^T and PV at 2 flops per MAC, halved for the causal mask).")
    md.append("- All-reduce over n GPUs: `latency + bytes / bw`, bw the effective (algorithm) bandwidth;")
    md.append("  busbw = bw * 2(n-1)/n. Per message size the faster of NCCL all_reduce (fp16) and vLLM")
    md.append("  custom all-reduce under CUDA graphs (bf16). `message_size` in both tables is an element")
    md.append("  count (NCCL int8 rows take about half the time of fp16 rows), so bytes = 2 * message_size.")
    md.append("")
    md.append("Attention, all-reduce: least squares on relative error, coefficients >= 0.")
    md.append("")
    md.append("## Fit ranges")
    md.append("")
    md.append("- GEMM: m 1..16384, n >= 256, k >= 256 (gemm_dtype bfloat16 / fp8; fp8_block not fitted).")
    md.append("- Decode attention: window_size 0, kv_cache_dtype bfloat16, batch <= 512.")
    md.append("- Prefill attention: window_size 0, kv_cache_dtype bfloat16, isl >= 16, batch*isl <= 65536.")
    md.append("- All-reduce: every measured size, n = 2, 4, 8.")
    md.append("")
    md.append("## 5-fold held-out MAPE")
    md.append("")
    md.append("Cell: held-out MAPE (in-sample MAPE of the final fit, rows fitted). Folds: random split,")
    md.append("seed %d." % SEED)
    md.append("")
    md.extend(table)
    md.append("")
    md.append("## Fitted constants")
    md.append("")
    md.extend(params)
    md.append("")
    md.append("## Roofline sanity")
    md.append("")
    md.append("Efficiencies should lie in (0.3, 1.0]; all-reduce busbw is compared with the NVLink")
    md.append("per-direction peak.")
    md.append("")
    md.append("| GPU | figure | value | check |")
    md.append("|---|---|---|---|")
    md.extend(san_lines)
    md.append("")
    md.append("Flags: " + ("; ".join(flags) if flags else "none") + ".")
    md.append("")
    md.append("## Notes")
    md.append("")
    md.extend("- " + n + "." for n in notes)
    md.append("")
    with open(os.path.join(args.out_dir, "kernel_fit_report.md"), "w") as f:
        f.write("\n".join(md))


if __name__ == "__main__":
    main()

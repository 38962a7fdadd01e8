#!/usr/bin/python3
"""Fits each engine preset's host time per iteration (fixed, per running sequence, per prefill
token) to measured closed-loop serving rows, by running servesim on them.

Data: ../shared/data/validation-open/aiconfigurator-silicon/silicon_non_h100.csv (Apache-2.0;
see its README), the aggregated rows on H200 of the dense models servesim knows (Llama-3.1-8B,
Llama-3.1-70B). Rows on other GPUs (B200, B300, GB200, GB300) are left out: servesim has no
specification or fitted kernels for them. The H100 rows of the same source are a sealed test
set and are never read.

Objective: mean over rows of |log(pred / measured)| for TPOT plus half that for TTFT (TPOT is
what host time sets; TTFT mixes in scheduling). A coordinate search over a log grid per term.

  tools/fit_engine_host.py [--servesim build/servesim] [--engine vllm] [--rows]
Prints the fitted terms and the MAPE per engine and model; paste them into policies/engine.cc.
  --report-only: the MAPE with the presets as they are; --logo: leave-one-group-out error.
  --set POINTER=VALUE (repeatable): passed to every run, e.g. --set /workload/output_spread=0.02.
"""
import argparse
import concurrent.futures as cf
import csv
import json
import math
import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(ROOT, "..", "shared", "data", "validation-open", "aiconfigurator-silicon",
                    "silicon_non_h100.csv")
MODELS = {"Llama-3.1-8B-Instruct": "Llama-3.1-8B", "Llama-3.1-8B-Instruct-FP8": "Llama-3.1-8B",
          "Llama-3.1-70B": "Llama-3.1-70B", "Qwen3-32B": "Qwen3-32B"}
GPUS = {"h200_sxm": "H200"}
# "auto": vLLM rows of the aic-auto-gap-analysis sources run with aiperf's recipe (20 x C
# requests, 100 prompts reused); "genai-perf": every row with scenarios/closed_loop_h100.json as it is.
RECIPE = "auto"
# Extra `--set` overrides given on the command line, passed to every run.
EXTRA_SETS = []


def open_rows(path=DATA):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            model = MODELS.get(r["model_path"].split("/")[-1])
            if r["mode"] != "agg" or r["system"] not in GPUS or model is None:
                continue
            if r["precision"] not in ("", "fp8") or int(r["pp_size"] or 1) != 1:
                continue
            rows.append(dict(r, model=model, gpu=GPUS[r["system"]]))
    return rows


def run_row(servesim, r, host):
    fd, out = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    args = [servesim, "run", os.path.join(ROOT, "scenarios", "closed_loop_h100.json"), "-q", "-o",
            out, "--set", f"/model={r['model']}", "--set", f"/engine={r['backend']}",
            "--set", f"/instances/0/tp={r['tp_size']}",
            "--set", f"/workload/concurrency={r['batch_size']}",
            "--set", f"/workload/input_tokens={r['isl']}",
            "--set", f"/workload/output_tokens={r['osl']}",
            "--set", f"/cluster/nodes/0/gpus/type={r['gpu']}"]
    if r["precision"] == "fp8":
        args += ["--set", "/precision/weights=fp8"]
    if (RECIPE == "auto" and r["backend"] == "vllm"
            and "aic-auto-gap-analysis" in r["silicon_data_source"]):
        # These rows' TTFT and TPOT need prefix-cache hits: 64 clients of 2,000-token prompts
        # (vLLM 8B, TP 1) finish a request every 17 ms, 117k prompt tokens/s, i.e. 95% of the
        # H200's dense FP8 peak for the prefills alone. aiperf's recipe reuses 100 prompts.
        # The SGLang rows of the same source need no hits and fit far worse with them.
        args += ["--set", "/workload/requests_per_client=20",
                 "--set", "/workload/distinct_prompts=100"]
    if r["backend"] == "vllm" and r["model"] == "Llama-3.1-70B":
        # InferenceMAX's launch script sets kv-cache-dtype fp8 (tools/validate.cc).
        args += ["--set", "/precision/kv=fp8"]
    if (r["backend"] == "trtllm" and r["model"] == "Llama-3.1-70B" and r["isl"] == "1024"
            and r["osl"] == "1024" and int(r["tp_size"]) < 8):
        # InferenceMAX's launch script turns batch waiting on for these rows (tools/validate.cc).
        args += ["--set", '/policies/batcher={"batch_wait_timeout_iters": 20, '
                 '"batch_wait_max_tokens_ratio": 0.9, "max_num_batched_tokens": 16384}']
    for override in EXTRA_SETS:
        args += ["--set", override]
    if host is not None:
        # Key by key: the scenario's own overrides (its frontend latency) stay.
        for key, value in host.items():
            args += ["--set", f"/engine_overrides/{key}={json.dumps(value)}"]
    subprocess.run(args, check=True, capture_output=True)
    with open(out) as f:
        s = json.load(f)["summary"]
    os.remove(out)
    return s["mean_ttft_ms"], s["mean_tpot_ms"]


def evaluate(servesim, rows, host, jobs=2):
    with cf.ThreadPoolExecutor(jobs) as ex:
        return list(ex.map(lambda r: run_row(servesim, r, host), rows))


def loss(rows, preds):
    total = 0.0
    for r, (ttft, tpot) in zip(rows, preds):
        total += abs(math.log(tpot / float(r["silicon_tpot_ms"])))
        total += 0.5 * abs(math.log(ttft / float(r["silicon_ttft_ms"])))
    return total / len(rows)


def report(rows, preds, show_rows=False):
    groups = {}
    for r, (ttft, tpot) in zip(rows, preds):
        et = abs(ttft / float(r["silicon_ttft_ms"]) - 1) * 100
        ep = abs(tpot / float(r["silicon_tpot_ms"]) - 1) * 100
        groups.setdefault((r["backend"], r["model"], r["gpu"]), []).append((et, ep))
        if show_rows:
            print(f"{r['backend']:7} {r['model']:14} tp{r['tp_size']} c{r['batch_size']:>4} "
                  f"{r['isl']:>5}/{r['osl']:<5} ttft {float(r['silicon_ttft_ms']):9.1f} "
                  f"{ttft:9.1f}  tpot {float(r['silicon_tpot_ms']):6.2f} {tpot:6.2f}")
    for k, v in sorted(groups.items()):
        print(f"{' '.join(k):36} n={len(v):3}  TTFT MAPE {sum(e[0] for e in v) / len(v):6.1f}%"
              f"  TPOT MAPE {sum(e[1] for e in v) / len(v):6.1f}%")


GRID = {"iteration_overhead_s": [0, 2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3, 8e-3],
        "host_per_sequence_s": [0, 5e-6, 1e-5, 2e-5, 4e-5, 8e-5],
        "host_per_prefill_token_s": [0, 2.5e-7, 5e-7, 1e-6, 2e-6, 4e-6]}


def fit(servesim, rows, start):
    host = dict(start)
    best = loss(rows, evaluate(servesim, rows, host))
    for _ in range(2):
        for key, values in GRID.items():
            for v in values:
                trial = dict(host, **{key: v})
                l = loss(rows, evaluate(servesim, rows, trial))
                if l < best - 1e-4:
                    best, host = l, trial
    return host, best


def leave_one_group_out(servesim, rows):
    """Host terms fitted without a group (one set shared by the other groups' engines), then
    tested on it: how well the fitted host time carries to an engine or model it never saw."""
    def key(r):
        return (r["backend"], r["model"], r["gpu"])
    for g in sorted({key(r) for r in rows}):
        train = [r for r in rows if key(r) != g]
        test = [r for r in rows if key(r) == g]
        host, _ = fit(servesim, train, {"iteration_overhead_s": 1e-3, "host_per_sequence_s": 0,
                                        "host_per_prefill_token_s": 0})
        print("left out", " ".join(g), "fitted on the rest:", json.dumps(host), flush=True)
        report(test, evaluate(servesim, test, host))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servesim", default=os.path.join(ROOT, "build", "servesim"))
    ap.add_argument("--engine", action="append")
    ap.add_argument("--rows", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--host", help="with --report-only: engine_overrides JSON to try")
    ap.add_argument("--logo", action="store_true",
                    help="leave-one-group-out: for each engine x model x GPU group, fit one "
                         "set of host terms on all other groups and report the error on it")
    ap.add_argument("--recipe", choices=["auto", "genai-perf"], default="auto")
    ap.add_argument("--set", action="append", default=[], metavar="POINTER=VALUE",
                    help="a scenario override passed to every run")
    a = ap.parse_args()
    global RECIPE
    RECIPE = a.recipe
    EXTRA_SETS.extend(a.set)
    # A private copy, so that rebuilding while a fit runs does not pull the binary away.
    binary = os.path.join(tempfile.mkdtemp(), "servesim")
    shutil.copy2(a.servesim, binary)
    a.servesim = binary
    rows = open_rows()
    if a.logo:
        leave_one_group_out(a.servesim, rows)
        return
    for engine in a.engine or sorted({r["backend"] for r in rows}):
        mine = [r for r in rows if r["backend"] == engine]
        if a.report_only:
            host = json.loads(a.host) if a.host else None
            report(mine, evaluate(a.servesim, mine, host), a.rows)
            continue
        host, best = fit(a.servesim, mine, {"iteration_overhead_s": 1e-3,
                                            "host_per_sequence_s": 0,
                                            "host_per_prefill_token_s": 0})
        print(engine, json.dumps(host), f"loss {best:.4f}")
        report(mine, evaluate(a.servesim, mine, host), a.rows)


if __name__ == "__main__":
    main()

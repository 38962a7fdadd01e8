#!/usr/bin/python3
"""Wall time of `servesim run scenarios/closed_loop_h100.json` over a grid of the benchmark
command form: models Llama-3.1-8B, Qwen3-32B, Llama-3.1-70B; engines vllm, sglang, trtllm;
TP 1/2/4/8; BF16 and FP8 weights; the concurrencies and lengths given. Prints failures (a
configuration that does not fit, e.g. Llama-3.1-70B in BF16 on one 80 GB GPU) and the slowest
runs.

  tools/time_closed_loop_grid.py [--concurrency 8,32,128] [--input 1024,2048,4096]
                                         [--output 128,512,1024]
"""
import argparse
import itertools
import os
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(servesim, cfg):
    model, engine, tp, c, isl, osl, fp8 = cfg
    args = [servesim, "run", os.path.join(ROOT, "scenarios", "closed_loop_h100.json"), "-q",
            "-o", os.devnull, "--set", f"/model={model}", "--set", f"/engine={engine}",
            "--set", f"/instances/0/tp={tp}", "--set", f"/workload/concurrency={c}",
            "--set", f"/workload/input_tokens={isl}", "--set", f"/workload/output_tokens={osl}"]
    if fp8:
        args += ["--set", "/precision/weights=fp8"]
    start = time.monotonic()
    p = subprocess.run(args, capture_output=True, text=True)
    return time.monotonic() - start, cfg, p.returncode, p.stderr.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servesim", default=os.path.join(ROOT, "build", "servesim"))
    ap.add_argument("--concurrency", default="8,32,128")
    ap.add_argument("--input", default="1024,2048,4096")
    ap.add_argument("--output", default="128,512,1024")
    a = ap.parse_args()
    ints = lambda s: [int(x) for x in s.split(",")]
    grid = itertools.product(["Llama-3.1-8B", "Qwen3-32B", "Llama-3.1-70B"],
                             ["vllm", "sglang", "trtllm"], [1, 2, 4, 8], ints(a.concurrency),
                             ints(a.input), ints(a.output), [False, True])
    results = sorted((run(a.servesim, cfg) for cfg in grid), key=lambda r: -r[0])
    failed = [r for r in results if r[2] != 0]
    print(f"{len(results)} runs, {len(failed)} failed")
    for r in failed:
        print("  failed:", r[1], r[3].splitlines()[-1] if r[3] else "")
    for r in results[:5]:
        print(f"  {r[0]:.2f} s", r[1])


if __name__ == "__main__":
    main()

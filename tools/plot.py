#!/usr/bin/python3
"""Plots of servesim results (Python 3 + matplotlib, both from Debian).

  plot.py cdf        RESULT.json [RESULT.json ...] -o DIR   latency CDFs (TTFT, TPOT, E2E), runs overlaid
  plot.py timeseries RESULT.json [...] -o DIR              KV occupancy and queue depth per instance
  plot.py gpus       RESULT.json [...] -o DIR              per-GPU busy fraction and memory breakdown
  plot.py links      RESULT.json [...] -o DIR              bytes moved per link
  plot.py energy     RESULT.json [...] -o DIR              per-GPU power, MFU and MBU over time, and
                     energy per GPU (GPUs with a known TDP)
  plot.py sweep      DIR/sweep.json --x POINTER [--y METRIC ...] -o DIR   metric vs swept value
                     (files named DIR's folder name + metric, so several sweeps share -o)
  plot.py all        RESULT.json [...] -o DIR              cdf + timeseries + gpus + links + energy
  plot.py validate   VALIDATE.json -o DIR   predicted vs measured TTFT and TPOT of the serving
                     rows (servesim validate -o VALIDATE.json), one colour per engine x model

A RESULT may also be a records file of `servesim run --requests-out` (.jsonl): the CDFs come
from its records. Each command prints the PNG files it wrote, one per line. With several results the per-run
plots are prefixed with the run's label (--label, else the file name without .json).
"""

import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402

DPI = 110


def fail(message):
    """One line naming the file, exit 2: the convention of the servesim binary."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def load(path):
    """A result JSON, or a records file of `servesim run --requests-out` (one JSON record a
    line, .jsonl), which reads as a result holding only its `requests`."""
    try:
        with open(path, encoding="utf-8") as f:
            if path.endswith(".jsonl"):
                records = []
                for number, line in enumerate(f, start=1):
                    if line.strip():
                        try:
                            records.append(json.loads(line))
                        except json.JSONDecodeError as e:
                            fail(f"{path}:{number}:{e.colno}: invalid JSON: {e.msg}")
                return {"requests": records, "records_only": True}
            return json.load(f)
    except OSError as e:
        fail(f"{path}: cannot open ({e.strerror})")
    except json.JSONDecodeError as e:
        fail(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}")


def pointer_label(pointer):
    """An axis label for a JSON pointer or metric: its last key in words, the unit apart."""
    key = pointer.rsplit("/", 1)[-1]
    for suffix, unit in (("_per_s", "/s"), ("_ms", "ms"), ("_s", "s"), ("_bytes", "bytes")):
        if key.endswith(suffix):
            return f"{key[:-len(suffix)].replace('_', ' ')} ({unit})"
    return key.replace("_", " ")


def legend(ax, count):
    """Readable with many series: smaller, in columns, outside the axes past ten."""
    if count > 10:
        ax.legend(fontsize=6, ncol=max(1, math.ceil(count / 20)), loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    else:
        ax.legend(fontsize=8)


def labels_for(paths, given):
    if given and len(given) != len(paths):
        fail(f"--label given {len(given)} times for {len(paths)} result files")
    return given or [os.path.splitext(os.path.basename(p))[0] for p in paths]


def save(fig, out_dir, name, written):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    written.append(path)


def finished_records(result, path):
    """Per-request records that count in the summary (finished, past the warm-up)."""
    if "requests" not in result:
        fail(f"{path}: /requests: no per-request records; run with \"output\": "
             "{\"requests\": true} (the default) and without --requests-out")
    warmup = result.get("summary", {}).get("warmup_requests_discarded", 0)
    return [r for r in result["requests"] if r.get("status") == "finished" and r["id"] >= warmup]


def has_records(result):
    return "requests" in result


def latencies_ms(records):
    ttft = [r["ttft_ms"] for r in records if "ttft_ms" in r]
    e2el = [r["e2el_ms"] for r in records if "e2el_ms" in r]
    # TPOT as benchmark_serving defines it: decode time over the tokens after the first.
    tpot = [(r["finish_s"] - r["first_token_s"]) * 1e3 / (r["generated_tokens"] - 1)
            for r in records
            if r.get("generated_tokens", 0) > 1 and "finish_s" in r and "first_token_s" in r]
    return {"ttft": ttft, "tpot": tpot, "e2el": e2el}


def plot_cdf(results, labels, out_dir, written):
    series = [latencies_ms(finished_records(r, p)) for p, r in results]
    titles = {"ttft": "Time to first token", "tpot": "Time per output token (excl. first)",
              "e2el": "End-to-end latency"}
    for key, title in titles.items():
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for label, s in zip(labels, series):
            values = sorted(v for v in s[key] if v > 0)
            if not values:
                continue
            n = len(values)
            ax.step(values, [(i + 1) / n for i in range(n)], where="post",
                    label=f"{label} (n={n})")
        ax.set_xscale("log")
        ax.set_xlabel(f"{key.upper()} (ms, log scale)")
        ax.set_ylabel("fraction of requests")
        ax.set_ylim(0, 1.01)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        legend(ax, len(series))
        fig.tight_layout()
        save(fig, out_dir, f"cdf_{key}.png", written)


def prefix(label, many):
    return f"{label}_" if many else ""


def plot_timeseries(result, path, label, many, out_dir, written):
    ts = result.get("timeseries")
    if not ts or not ts.get("time_s"):
        fail(f"{path}: /timeseries: no samples")
    t = ts["time_s"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for inst in ts["instances"]:
        ax.plot(t, [100 * x for x in inst["kv_used_fraction"]], label=inst["name"], linewidth=1)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("KV cache used (% of blocks)")
    ax.set_ylim(0, 105)
    ax.set_title(f"KV occupancy per instance: {label}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    save(fig, out_dir, f"{prefix(label, many)}kv_occupancy.png", written)

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for inst in ts["instances"]:
        top.plot(t, inst["waiting"], label=inst["name"], linewidth=1)
        bottom.plot(t, inst["running"], label=inst["name"], linewidth=1)
    top.set_ylabel("waiting requests")
    bottom.set_ylabel("running requests")
    bottom.set_xlabel("simulated time (s)")
    top.set_title(f"Queue depth per instance: {label}")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    top.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    save(fig, out_dir, f"{prefix(label, many)}queue_depth.png", written)


def plot_gpus(result, path, label, many, out_dir, written):
    gpus = result.get("gpus")
    if not gpus:
        fail(f"{path}: /gpus: empty")
    names = [g["name"] for g in gpus]
    instances = {i["name"]: i for i in result.get("instances", [])}
    colours = {}
    for g in gpus:
        colours.setdefault(g["instance"], f"C{len(colours) % 10}")

    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(gpus) + 2), 4))
    ax.bar(names, [100 * g["busy_fraction"] for g in gpus],
           color=[colours[g["instance"]] for g in gpus])
    ax.set_ylabel("busy (% of simulated time)")
    ax.set_ylim(0, 105)
    ax.set_title(f"GPU busy fraction (time running an iteration): {label}")
    ax.tick_params(axis="x", rotation=45)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    save(fig, out_dir, f"{prefix(label, many)}gpu_utilisation.png", written)

    # Memory per GPU: weights, reserve, KV used at peak, KV left unused, memory left unplanned.
    parts = {"weights": [], "reserve": [], "KV used (peak)": [], "KV unused": [], "free": []}
    for g in gpus:
        m = instances[g["instance"]]["memory_per_gpu"]
        kv_peak = max(0.0, m["peak_used_bytes"] - m["weights_bytes"] - m["reserve_bytes"])
        parts["weights"].append(m["weights_bytes"] / 1e9)
        parts["reserve"].append(m["reserve_bytes"] / 1e9)
        parts["KV used (peak)"].append(kv_peak / 1e9)
        parts["KV unused"].append(max(0.0, m["kv_bytes"] - kv_peak) / 1e9)
        parts["free"].append(max(0.0, m["total_bytes"] - m["weights_bytes"] - m["reserve_bytes"]
                                 - m["kv_bytes"]) / 1e9)
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(gpus) + 3), 4.5))
    bottom = [0.0] * len(gpus)
    for (part, values), colour in zip(parts.items(), ["C0", "C7", "C3", "C1", "C2"]):
        ax.bar(names, values, bottom=bottom, label=part, color=colour)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("GB per GPU")
    ax.set_title(f"GPU memory breakdown: {label}")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    save(fig, out_dir, f"{prefix(label, many)}gpu_memory.png", written)


def plot_energy(result, path, label, many, out_dir, written, required=True):
    ts = result.get("timeseries")
    stages = [(inst["name"] if len(inst.get("stages", [])) == 1 else f"{inst['name']} stage {k}", st)
              for inst in (ts or {}).get("instances", []) for k, st in enumerate(inst.get("stages", []))]
    if not ts or not ts.get("time_s") or not stages:
        if required:
            fail(f"{path}: /timeseries/instances/N/stages: none (a result older than MFU and MBU)")
        return
    t = ts["time_s"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for name, st in stages:
        top.plot(t, [100 * x for x in st["mfu"]], label=f"{name} MFU", linewidth=1)
        top.plot(t, [100 * x for x in st["mbu"]], label=f"{name} MBU", linewidth=1, linestyle="--")
    top.set_ylabel("% of peak (per GPU)")
    top.set_title(f"MFU and MBU per sample window: {label}")
    top.grid(True, alpha=0.3)
    legend(top, 2 * len(stages))
    powered = [(name, st) for name, st in stages if "power_w" in st]
    for name, st in powered:
        bottom.plot(t, st["power_w"], label=name, linewidth=1)
    bottom.set_ylabel("power per GPU (W)")
    bottom.set_xlabel("simulated time (s)")
    bottom.grid(True, alpha=0.3)
    if powered:
        legend(bottom, len(powered))
    else:
        bottom.set_title("no power: a GPU without a known TDP")
    fig.tight_layout()
    save(fig, out_dir, f"{prefix(label, many)}power_utilisation.png", written)

    gpus = [g for g in result.get("gpus", []) if "energy_j" in g]
    if not gpus:
        return
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(gpus) + 2), 4))
    ax.bar([g["name"] for g in gpus], [g["energy_j"] / 1e3 for g in gpus])
    ax.set_ylabel("energy (kJ)")
    summary = result.get("summary", {})
    per_token = summary.get("energy_per_output_token_j")
    ax.set_title(f"Energy per GPU: {label}"
                 + (f" ({per_token:.3g} J per output token)" if per_token is not None else ""))
    ax.tick_params(axis="x", rotation=45)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    save(fig, out_dir, f"{prefix(label, many)}gpu_energy.png", written)


def plot_links(result, path, label, many, out_dir, written):
    links = result.get("links", [])
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(links) + 2), 4.5))
    if links:
        names = [f"{l['name']}\n({l['kind']})" for l in links]
        bars = ax.bar(names, [l["bytes"] / 1e9 for l in links],
                      color=[f"C{i % 10}" for i in range(len(links))])
        for bar, l in zip(bars, links):
            ax.annotate(f"{100 * l['busy_fraction']:.2g}% busy",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("GB moved")
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(True, axis="y", alpha=0.3)
    else:
        ax.text(0.5, 0.5, "no traffic between GPUs\n(no replica spans several GPUs)",
                ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"Bytes per link: {label}")
    fig.tight_layout()
    save(fig, out_dir, f"{prefix(label, many)}link_bytes.png", written)


def plot_sweep(path, x_pointer, metrics, series_pointer, out_dir, written):
    table = load(path)
    if "points" not in table or "axes" not in table:
        fail(f"{path}: not a sweep table (written by servesim sweep as sweep.json)")
    axes = [a["pointer"] for a in table["axes"]]
    if x_pointer is None:
        x_pointer = axes[-1]
    if x_pointer not in axes:
        fail(f"{path}: --x {x_pointer}: not a swept pointer; swept: {', '.join(axes)}")
    others = [a for a in axes if a != x_pointer]
    if series_pointer is not None and series_pointer not in others:
        fail(f"{path}: --series {series_pointer}: not another swept pointer; "
             f"valid: {', '.join(others) or 'none'}")
    group_by = [series_pointer] if series_pointer else others
    xs = [p["values"][x_pointer] for p in table["points"]]
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
    categories = sorted(set(map(str, xs)), key=[str(x) for x in xs].index)
    for metric in metrics:
        if not all(metric in p["summary"] for p in table["points"]):
            fail(f"{path}: --y {metric}: not in every point's summary")
        groups = {}
        for p in table["points"]:
            key = ", ".join(f"{g.rsplit('/', 1)[-1]}={p['values'][g]}" for g in group_by)
            groups.setdefault(key, []).append(p)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for key, points in groups.items():
            points = sorted(points, key=lambda p: p["values"][x_pointer] if numeric
                            else categories.index(str(p["values"][x_pointer])))
            x = [p["values"][x_pointer] if numeric
                 else categories.index(str(p["values"][x_pointer])) for p in points]
            ax.plot(x, [p["summary"][metric] for p in points], marker="o", label=key or metric)
        if not numeric:
            ax.set_xticks(range(len(categories)), categories)
        ax.set_xlabel(pointer_label(x_pointer))
        ax.set_ylabel(pointer_label(metric))
        if metric.endswith("_ms") and all(p["summary"][metric] > 0 for p in table["points"]):
            ax.set_yscale("log")
        ax.set_title(f"{metric} vs {x_pointer.rsplit('/', 1)[-1]}")
        ax.grid(True, which="both", alpha=0.3)
        if any(groups):
            legend(ax, len(groups))
        fig.tight_layout()
        name = os.path.basename(os.path.dirname(os.path.abspath(path))) or "sweep"
        save(fig, out_dir, f"{name}_{metric}.png", written)


def plot_validate(path, out_dir, written):
    """Predicted against measured mean TTFT and TPOT of the silicon tables, log-log, with the
    y = x line and a +-20% band: where a group sits off the band is where its error is."""
    doc = load(path)
    tables = [t for t in doc.get("tables", []) if t.get("name", "").startswith("silicon ")]
    if not tables:
        fail(f"{path}: no silicon tables (write it with servesim validate -o FILE)")
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, metric in zip(axes, ("ttft", "tpot")):
        lo, hi = math.inf, 0.0
        for t in tables:
            if not t["name"].endswith(" " + metric):
                continue
            rows = t.get("predictions", [])
            xs = [r["measured"] for r in rows]
            ys = [r["predicted"] for r in rows]
            if not xs:
                continue
            group = t["name"][len("silicon "):-len(metric) - 1]
            ax.scatter(xs, ys, s=14, alpha=0.75,
                       label=f"{group} ({t['mape_pct']:.1f}% MAPE, {len(xs)} rows)")
            lo, hi = min(lo, *xs, *ys), max(hi, *xs, *ys)
        if hi <= 0:
            fail(f"{path}: no {metric} rows")
        line = [lo / 1.5, hi * 1.5]
        ax.plot(line, line, color="black", linewidth=1)
        ax.fill_between(line, [v / 1.2 for v in line], [v * 1.2 for v in line], color="grey",
                        alpha=0.15, label="within 20%")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"measured mean {metric.upper()} (ms)")
        ax.set_ylabel(f"predicted mean {metric.upper()} (ms)")
        ax.set_title(f"{metric.upper()}: predicted vs measured")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save(fig, out_dir, "validate_silicon.png", written)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("cdf", "timeseries", "gpus", "links", "energy", "all"):
        p = sub.add_parser(name)
        p.add_argument("results", nargs="+", help="result JSON files from servesim run")
        p.add_argument("--label", action="append", help="label per result, in order")
        p.add_argument("-o", "--output-dir", required=True)
    p = sub.add_parser("validate")
    p.add_argument("table", help="JSON written by servesim validate -o")
    p.add_argument("-o", "--output-dir", required=True)
    p = sub.add_parser("sweep")
    p.add_argument("table", help="sweep.json written by servesim sweep")
    p.add_argument("--x", help="swept pointer on the x axis (default: the last axis)")
    p.add_argument("--y", action="append", help="summary metric (repeatable; default p99_ttft_ms)")
    p.add_argument("--series", help="swept pointer that makes one line each "
                   "(default: every other axis)")
    p.add_argument("-o", "--output-dir", required=True)
    args = parser.parse_args(argv)

    written = []
    if args.command == "validate":
        plot_validate(args.table, args.output_dir, written)
    elif args.command == "sweep":
        plot_sweep(args.table, args.x, args.y or ["p99_ttft_ms"], args.series, args.output_dir,
                   written)
    else:
        labels = labels_for(args.results, args.label)
        results = [(p, load(p)) for p in args.results]
        many = len(results) > 1
        if args.command == "cdf":
            plot_cdf(results, labels, args.output_dir, written)
        elif args.command == "all":
            # The CDFs need per-request records; the other plots do not, so a result without
            # them still gets those.
            with_records = [(i, pr) for i, pr in enumerate(results) if has_records(pr[1])]
            for path, result in results:
                if not has_records(result):
                    print(f"note: {path}: no per-request records, so no latency CDF from it",
                          file=sys.stderr)
            if with_records:
                plot_cdf([pr for _, pr in with_records], [labels[i] for i, _ in with_records],
                         args.output_dir, written)
        for (path, result), label in zip(results, labels):
            if result.get("records_only"):
                continue  # a records file has no time series, GPUs or links
            if args.command in ("timeseries", "all"):
                plot_timeseries(result, path, label, many, args.output_dir, written)
            if args.command in ("gpus", "all"):
                plot_gpus(result, path, label, many, args.output_dir, written)
            if args.command in ("links", "all"):
                plot_links(result, path, label, many, args.output_dir, written)
            if args.command in ("energy", "all"):
                plot_energy(result, path, label, many, args.output_dir, written,
                            required=args.command == "energy")
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

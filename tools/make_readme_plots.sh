#!/usr/bin/env bash
# Makes the example plots of the README: Q11 under size-class and round-robin routing (latency
# CDFs overlaid, KV occupancy, queue depth, GPU utilisation and memory, link bytes) and a sweep
# of router x arrival rate (p99 TTFT and throughput vs rate). Runs in a few seconds.
# Usage: tools/make_readme_plots.sh [OUT_DIR]   (default docs/img; results go to OUT_DIR/runs)
# Environment: SERVESIM (default build/servesim), PYTHON (default /usr/bin/python3, Debian's,
# which has matplotlib).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
servesim="${SERVESIM:-$root/build/servesim}"
python="${PYTHON:-/usr/bin/python3}"
out="${1:-$root/docs/img}"
runs="$out/runs"
q11="$root/scenarios/seed_q11_four_node.json"
mkdir -p "$runs"

for router in size_class round_robin; do
  "$servesim" run "$q11" --set /policies/router/name="$router" -q -o "$runs/$router.json"
done
"$servesim" sweep "$q11" -q -j 2 -o "$runs/sweep" \
  --grid /policies/router/name=size_class,least_loaded,round_robin \
  --grid /workload/rate_per_s=0.5,1,2,3

"$python" "$root/tools/plot.py" all "$runs/size_class.json" "$runs/round_robin.json" -o "$out"
"$python" "$root/tools/plot.py" sweep "$runs/sweep/sweep.json" --x /workload/rate_per_s \
  --y p99_ttft_ms --y request_throughput -o "$out"

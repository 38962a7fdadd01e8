#!/usr/bin/env bash
# The standard performance workloads, each run RUNS times (default 5); prints the
# median wall time, simulated/wall time ratio, events/s and peak RSS of each as a table.
#   (a)    Azure conversation trace (19,366 requests) on 16 H100 replicas
#   (azure8) the same trace on the 8 H100 replicas of scenarios/azure_conv_8xh100.json
#   (disagg) the same trace on 8 prefill + 8 decode H100 replicas on two nodes, every KV
#          hand-off a flow on the network (scenarios/bench_disagg_azure_conv.json)
#   (b)    1,000,000 Poisson requests at 80% of capacity on 64 H100 replicas
#   (b100k) the first 100,000 requests of (b)
#   (c)    the same 100,000 requests with every output length x10 (same arrivals and prompts:
#          the output lengths come from their own RNG stream)
#   (b8)   100,000 Poisson requests on the same 64 H100 as 8 replicas of TP 8 that batch up to
#          2,560 requests, ten times (b)'s limit (scenarios/bench_poisson_8x_tp8.json)
#   (c8)   (b8) with every output length x10, as (c) is to (b100k): batches of 2,560
#   (brec) (b) with the per-request records in the result (/output/requests true)
#   (b10m) 10,000,000 requests of (b)'s distribution; (b10mrec) the same with records
#   (b100m) 100,000,000 requests of (b)'s distribution, records off (about 5 minutes a run)
# Figures come from `servesim run --stats` (measured inside the process: wall time from load to
# written result, VmHWM for peak RSS). Usage: tools/bench.sh [servesim binary] [workload...]
# e.g. RUNS=1 tools/bench.sh build/servesim a b100k. With VS=OTHER_BINARY each run of the binary
# is followed by the same run of the other (an A/B comparison in one sitting), whose medians
# are printed second.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/servesim}
shift || true
runs=${RUNS:-5}
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(a b b100k c b8 c8)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

poisson=scenarios/bench_poisson_1m_64x.json
poisson_tp8=scenarios/bench_poisson_8x_tp8.json
# x10 output: lognormal mu + ln(10), min and max x10; arrivals and prompts are unchanged.
x10='{"lognormal":[7.321585,0.859],"min":10,"max":10000}'
args_for() {
  case "$1" in
    a) echo "scenarios/bench_azure_16xh100.json" ;;
    azure8) echo "scenarios/azure_conv_8xh100.json --set /output/requests=false" ;;
    disagg) echo "scenarios/bench_disagg_azure_conv.json" ;;
    b) echo "$poisson" ;;
    b100k) echo "$poisson --set /workload/requests=100000" ;;
    c) echo "$poisson --set /workload/requests=100000 --set /workload/output_tokens=$x10" ;;
    b8) echo "$poisson_tp8" ;;
    c8) echo "$poisson_tp8 --set /workload/output_tokens=$x10" ;;
    brec) echo "$poisson --set /output/requests=true" ;;
    b10m) echo "$poisson --set /workload/requests=10000000" ;;
    b10mrec) echo "$poisson --set /workload/requests=10000000 --set /output/requests=true" ;;
    b100m) echo "$poisson --set /workload/requests=100000000" ;;
    *) echo "unknown workload '$1' (a, azure8, disagg, b, b100k, c, b8, c8, brec, b10m, b10mrec, b100m)" >&2; exit 2 ;;
  esac
}
describe() {
  case "$1" in
    a) echo "(a) Azure conv 19,366 req, 16xH100" ;;
    azure8) echo "Azure conv 19,366 req, 8xH100" ;;
    disagg) echo "Azure conv, 8P+8D H100, 2 nodes" ;;
    b) echo "(b) Poisson 1M req, 64xH100" ;;
    b100k) echo "(b) first 100k req" ;;
    c) echo "(c) first 100k req, output x10" ;;
    b8) echo "(b8) 100k req, 8 x TP8, batch 2,560" ;;
    c8) echo "(c8) (b8) with output x10" ;;
    brec) echo "(b) 1M req, records on" ;;
    b10m) echo "(b) 10M req" ;;
    b10mrec) echo "(b) 10M req, records on" ;;
    b100m) echo "(b) 100M req" ;;
  esac
}

printf '%-36s %9s %12s %12s %13s %10s\n' workload "wall_s" "sim/wall" "events" "events/s" "RSS_MiB"
for w in "${workloads[@]}"; do : >"$tmp/$w.stats" && : >"$tmp/$w.vs.stats"; done
# Rounds of one run per workload, interleaved, so that a drift in the machine's speed over the
# minutes of a benchmark weighs on every workload alike (and on the (c)/(b) ratio least).
for ((i = 0; i < runs; i++)); do
  for w in "${workloads[@]}"; do
    read -r -a args <<<"$(args_for "$w")"
    "$bin" run "${args[@]}" -q -o "$tmp/result.json" --stats 2>&1 >/dev/null |
      grep '^stats:' >>"$tmp/$w.stats"
    [ -z "${VS:-}" ] || "$VS" run "${args[@]}" -q -o "$tmp/result.json" --stats 2>&1 >/dev/null |
      grep '^stats:' >>"$tmp/$w.vs.stats"
  done
done
# Median of each column over the runs (odd RUNS gives the middle run's figure).
table() {
  local suffix=$1
  for w in "${workloads[@]}"; do
    awk -v label="$(describe "$w")" '
    function med(col,   n, i, j, t, v) {
      n = 0
      for (i = 1; i <= NR; i++) { v[++n] = val[i, col] }
      for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    { for (f = 2; f <= NF; f++) { split($f, kv, "="); val[NR, kv[1]] = kv[2] } }
    END {
      printf "%-36s %9.3f %12.0f %12d %13.0f %10.1f\n", label, med("wall_s"), med("sim_per_wall"),
             med("events"), med("events_per_s"), med("peak_rss_mib")
    }' "$tmp/$w$suffix.stats"
  done
}
table ""
# The target for (c): at most 1.5x the time of the same 100k requests without x10; and the
# same ratio at ten times the batch, (c8) over (b8). Medians as in the table.
median_wall() {
  awk '{ split($2, kv, "="); print kv[2] }' "$1" | sort -g |
    awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() {
  local base=$1 x10=$2 label=$3 suffix=$4
  [ -s "$tmp/$base$suffix.stats" ] && [ -s "$tmp/$x10$suffix.stats" ] || return 0
  awk -v label="$label" -v b="$(median_wall "$tmp/$base$suffix.stats")" \
    -v c="$(median_wall "$tmp/$x10$suffix.stats")" 'BEGIN { printf "%s, median wall: %.2fx\n", label, c / b }'
}
ratios() {
  ratio b100k c "(c) / (b) first 100k" "$1"
  ratio b8 c8 "(c8) / (b8), batches to 2,560" "$1"
}
ratios ""
echo "medians of $runs runs; $(nproc) CPUs; $bin"
if [ -n "${VS:-}" ]; then
  echo "against $VS, run after it in the same rounds:"
  table .vs
  ratios .vs
fi

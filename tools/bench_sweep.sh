#!/usr/bin/env bash
# Times the 10,000-point sweep (2 routers x 50 rates x 100 seeds on Q11) run locally with -j 2
# and as a Slurm job array on the one-node cluster of tools/slurm_local.sh (2 CPUs), and checks
# that both write the same bytes. A benchmark, not a test: the figures go in README.
# Usage: tools/bench_sweep.sh [SERVESIM_BINARY] [WORK_DIR] [POINTS_PER_TASK]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
servesim=$(realpath "${1:-$src/build/servesim}")
work=$(realpath -m "${2:-$src/build/bench_sweep}")
points_per_task=${3:-10}
state="$work/cluster"

rm -rf "$work"
mkdir -p "$work"
trap '"$src/tools/slurm_local.sh" stop "$state"' EXIT

cd "$src"
# Per-request records off and one sample a minute: the table needs only the summaries, and
# 10,000 result files stay near 130 MB.
spec=(scenarios/seed_q11_four_node.json --set /output/requests=false
      --set /output/sample_interval_s=60
      --grid /policies/router/name=round_robin,size_class
      --grid "/workload/rate_per_s=$(seq -s, 0.1 0.1 5.0)"
      --grid "/seed=$(seq -s, 1 100)")

seconds_since() { awk -v now="$(date +%s.%N)" -v start="$1" 'BEGIN { print now - start }'; }

start=$(date +%s.%N)
"$servesim" sweep "${spec[@]}" -j 2 -q -o "$work/local"
local_s=$(seconds_since "$start")

"$src/tools/slurm_local.sh" start "$state" 2
export SLURM_CONF="$state/slurm.conf"
start=$(date +%s.%N)
"$servesim" sweep "${spec[@]}" -o "$work/array" --slurm --points-per-task "$points_per_task"
"$servesim" sweep collect "$work/array" --wait --poll-s 1 -q
array_s=$(seconds_since "$start")
start=$(date +%s.%N)
"$servesim" sweep collect "$work/array" -q
collect_s=$(seconds_since "$start")

diff -r --exclude=job "$work/local" "$work/array" >/dev/null ||
  { echo "bench_sweep: the job array's files differ from the local sweep's" >&2; exit 1; }
tasks=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tasks"])' \
  "$work/array/job/slurm.json")
printf '10,000 points: local -j 2 %.1f s; job array of %s tasks (%s points each) %.1f s from ' \
  "$local_s" "$tasks" "$points_per_task" "$array_s"
printf 'sbatch to merged table, of which collect %.1f s; files identical\n' "$collect_s"

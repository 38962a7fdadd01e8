#!/usr/bin/env bash
# Times the full Azure conversation trace (19,366 requests) on eight H100 replicas: five runs,
# prints each wall time and the median. Usage: tools/time_azure.sh [servesim binary]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/servesim}
out=$(mktemp -d)
times=()
for i in 1 2 3 4 5; do
  start=$(date +%s%N)
  "$bin" run scenarios/azure_conv_8xh100.json -q -o "$out/result.json"
  end=$(date +%s%N)
  times+=("$(awk -v ns=$((end - start)) 'BEGIN {printf "%.3f", ns / 1e9}')")
done
printf '%s\n' "${times[@]}" | sort -n | awk '{t[NR]=$1} END {printf "azure_conv_8xh100: runs %s s; median %.3f s wall\n", t[1]" "t[2]" "t[3]" "t[4]" "t[5], t[3]}'
rm -rf "$out"

#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz/ with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer into build-fuzz/, and runs each for its share of TOTAL_SECONDS
# (default 60): the scenario loader with a short run of what it accepts, the trace readers, and
# --set parsing. Seed corpora: the shipped scenarios, the head of each trace in ../shared/data,
# and typical overrides. Fails on any crash, sanitizer report, timeout (10 s for one input) or
# out-of-memory (2 GiB); the input that caused it is left in build-fuzz/findings/.
# Usage: tools/fuzz.sh [TOTAL_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
total_s=${1:-60}
packages=(clang-14 libclang-rt-14-dev cmake ninja-build libboost-graph-dev nlohmann-json3-dev
          libfmt-dev libcli11-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSERVESIM_WERROR=OFF -DSERVESIM_BUILD_TESTS=OFF -DSERVESIM_BUILD_FUZZERS=ON \
  -DCMAKE_CXX_FLAGS="$flags -fsanitize=fuzzer-no-link" -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz_scenario fuzz_traces fuzz_set

data=../shared/data/traces
corpus=build-fuzz/corpus
rm -rf "$corpus"
mkdir -p "$corpus/scenario" "$corpus/traces" "$corpus/set" build-fuzz/findings
cp scenarios/*.json "$corpus/scenario/"
# Small runnable scenarios, so the fuzzer starts from inputs that reach the simulation.
for s in seed_q11_four_node seed_q9_multiturn_vram seed_q7_static_batching closed_loop_h100; do
  python3 - "$s" "$corpus/scenario/small_$s.json" <<'PY'
import json, sys
d = json.load(open(f"scenarios/{sys.argv[1]}.json"))
w = d["workload"]
for key, small in (("requests", 24), ("concurrency", 4), ("sessions", 3), ("turns", 3)):
    if key in w: w[key] = small
w.pop("duration_s", None)
json.dump(d, open(sys.argv[2], "w"))
PY
done
for f in "$data"/azure2023/*.csv "$data"/mooncake/*.jsonl; do
  [ -f "$f" ] && head -c 4000 "$f" >"$corpus/traces/$(basename "$f")"
done
printf '/workload/rate_per_s=3' >"$corpus/set/rate"
printf '/policies/router/name=round_robin\n/instances/3/tp=1' >"$corpus/set/router"
printf '/precision={"weights":"int8","kv":"fp8"}' >"$corpus/set/precision"
printf '/workload/requests=1e400' >"$corpus/set/overflow"

share_s=$((total_s / 3 > 1 ? total_s / 3 : 1))
status=0
passed=0
failed=0
for target in scenario traces set; do
  echo "fuzz_$target: ${share_s} s"
  if ! build-fuzz/tests/fuzz/fuzz_$target "$corpus/$target" -max_total_time="$share_s" \
    -timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
    -artifact_prefix=build-fuzz/findings/"$target"- 2>build-fuzz/fuzz_$target.log; then
    status=1
    failed=$((failed + 1))
    echo "fuzz_$target: FINDING (build-fuzz/fuzz_$target.log, build-fuzz/findings/)"
    grep -E "ERROR|runtime error|SUMMARY|terminate|what\(\)" build-fuzz/fuzz_$target.log | head -5
  else
    passed=$((passed + 1))
  fi
  grep -E "stat::number_of_executed_units" build-fuzz/fuzz_$target.log |
    sed "s/^stat::number_of_executed_units: */fuzz_$target executions: /"
done
echo "fuzz: $passed passed, $failed failed"
exit "$status"

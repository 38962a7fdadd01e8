#!/usr/bin/env bash
# Shows that two builds give byte-identical result JSON (the command line recorded in the result
# aside) on every shipped scenario, plus variants that take other code paths: each router, the
# step-by-step reference, streamed request records, each engine preset and precision.
# Usage: tools/same_results.sh OLD_BINARY [NEW_BINARY]    (NEW defaults to build/servesim)
#        tools/same_results.sh --rev GIT_REV [NEW_BINARY]  (builds GIT_REV in a temporary tree)
# Exits 1 and names each differing run; prints "N runs identical" otherwise. With ADDED_KEYS_OK=1,
# a run whose new result keeps every old value and only adds keys passes as "same but added"
# (the added keys are listed once; tools/same_results_subset.py).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/tree" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT

# A build in the temporary tree looks for the shared data beside that tree: point both builds at
# this tree's, so the trace scenarios are compared rather than refused.
if [ -z "${SERVESIM_DATA:-}" ] && [ -d ../shared/data ]; then
  SERVESIM_DATA="$(cd ../shared/data && pwd)"
  export SERVESIM_DATA
fi

if [ "${1:-}" = "--rev" ]; then
  [ $# -ge 2 ] || { echo "usage: tools/same_results.sh --rev GIT_REV [NEW_BINARY]"; exit 2; }
  git worktree add --detach "$tmp/tree" "$2" >/dev/null 2>&1
  cmake -S "$tmp/tree" -B "$tmp/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DSERVESIM_BUILD_TESTS=OFF >/dev/null
  cmake --build "$tmp/build" --target servesim -j "$(nproc)" >/dev/null
  old="$tmp/build/servesim"
  shift 2
else
  [ $# -ge 1 ] || { echo "usage: tools/same_results.sh OLD_BINARY [NEW_BINARY]"; exit 2; }
  old=$1
  shift
fi
new=${1:-build/servesim}

runs=()
for s in scenarios/*.json; do runs+=("$s"); done
runs+=(
  "scenarios/seed_q11_four_node.json --set /policies/router/name=round_robin"
  "scenarios/seed_q11_four_node.json --set /policies/router/name=least_loaded"
  "scenarios/seed_q9_multiturn_vram.json --exact-steps"
  "scenarios/seed_q10_kv_offload.json --exact-steps"
  "scenarios/seed_q11_predicted_sizes.json --seed 7"
  "scenarios/closed_loop_h100.json --set /engine=sglang"
  "scenarios/closed_loop_h100.json --set /engine=trtllm --set /precision/weights=fp8"
  "scenarios/azure_conv_8xh100.json --requests-out @RECORDS@"
)

# The result's bytes without its recorded command line, which names the binary and output paths;
# a result an older build wrote with "requests" as its last key has that key's text moved first,
# where builds now write it (a move of bytes: values and layout are compared as written).
strip() {
  python3 -c '
import sys
text = open(sys.argv[1], "rb").read()
key = b",\n \"requests\": ["  # the top-level key: one space of indent
at = text.find(key)
if at >= 0 and text.endswith(b"\n}\n"):
    text = b"{\n" + text[at + 2 : -3] + b",\n" + text[2:at] + b"\n}\n"
sys.stdout.buffer.write(text)' "$1" | grep -v '^ *"command_line": '
}

same=0
added=0
differ=0
skipped=0
for i in "${!runs[@]}"; do
  read -r -a args <<<"${runs[$i]}"
  # A scenario the old build does not know (a feature added since) has nothing to compare with.
  if ! "$old" run "${args[@]//@RECORDS@/$tmp/old-$i.jsonl}" -q -o "$tmp/old-$i.json" 2>"$tmp/err"; then
    echo "SKIPPED (the old build refuses it): ${runs[$i]}: $(head -c 200 "$tmp/err")"
    skipped=$((skipped + 1))
    continue
  fi
  a=("${args[@]//@RECORDS@/$tmp/new-$i.jsonl}")
  "$new" run "${a[@]}" -q -o "$tmp/new-$i.json"
  if [ "$(strip "$tmp/old-$i.json")" = "$(strip "$tmp/new-$i.json")" ] &&
    { [ ! -e "$tmp/old-$i.jsonl" ] || cmp -s "$tmp/old-$i.jsonl" "$tmp/new-$i.jsonl"; }; then
    same=$((same + 1))
  elif [ "${ADDED_KEYS_OK:-0}" = 1 ] &&
    { [ ! -e "$tmp/old-$i.jsonl" ] || cmp -s "$tmp/old-$i.jsonl" "$tmp/new-$i.jsonl"; } &&
    "$(dirname "$0")/same_results_subset.py" "$tmp/old-$i.json" "$tmp/new-$i.json" \
      >"$tmp/added-$i.txt"; then
    cat "$tmp/added-$i.txt" >>"$tmp/added.txt"
    added=$((added + 1))
  else
    echo "DIFFERS: ${runs[$i]}"
    { [ -e "$tmp/added-$i.txt" ] && grep CHANGED "$tmp/added-$i.txt" | head -5; } || true
    differ=$((differ + 1))
  fi
done
[ -e "$tmp/added.txt" ] && sort -u "$tmp/added.txt"
echo "$same runs identical, $added the same with keys added, $differ differ, $skipped skipped"
[ "$differ" -eq 0 ]

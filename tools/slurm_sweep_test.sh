#!/usr/bin/env bash
# The Slurm sweep end to end on a real one-node cluster (tools/slurm_local.sh): a 200-point
# sweep as a job array of 20 tasks, collected and compared byte for byte with the local sweep;
# then one task's results are deleted, collect must refuse and list them, and resume must rerun
# that task alone. Where Slurm cannot be installed or started this fails; it never skips.
# Usage: tools/slurm_sweep_test.sh SERVESIM_BINARY WORK_DIR
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SERVESIM_BINARY WORK_DIR" >&2; exit 2; }
servesim=$(realpath "$1")
work=$(realpath -m "$2")
src=$(cd "$(dirname "$0")/.." && pwd)
state="$work/cluster"

fail() {
  echo "slurm sweep test: FAILED: $*" >&2
  exit 1
}

# collect --wait, bounded: a stuck queue fails the test with the queue and the daemons' logs.
collect_waiting() {
  timeout 300 "$servesim" sweep collect "$1" --wait --poll-s 0.5 -q && return 0
  squeue >&2 || true
  tail -n 20 "$state"/log/*.log >&2 || true
  fail "$2"
}

rm -rf "$work"
mkdir -p "$work"
trap '"$src/tools/slurm_local.sh" stop "$state"' EXIT
"$src/tools/slurm_local.sh" start "$state" 2 || fail "no Slurm cluster (see the messages above)"
export SLURM_CONF="$state/slurm.conf"

cd "$src"
# 2 routers x 10 rates x 10 seeds, short runs: the point is the plumbing, not the physics.
grid=(scenarios/seed_q11_four_node.json --set /workload/requests=40
      --grid /policies/router/name=round_robin,size_class
      --grid /workload/rate_per_s=0.5,1,1.5,2,2.5,3,3.5,4,4.5,5
      --grid /seed=1,2,3,4,5,6,7,8,9,10)

"$servesim" sweep "${grid[@]}" -j 2 -q -o "$work/local"
"$servesim" sweep "${grid[@]}" -o "$work/array" --slurm --points-per-task 10 | tee "$work/submit.txt"
grep -q "^Submitted job [0-9]*: 200 points in 20 array tasks" "$work/submit.txt" ||
  fail "sbatch submission not reported"
collect_waiting "$work/array" "collect after the array (or the array took over 300 s)"

# Every task ran under Slurm, each its 10 points.
[ "$(ls "$work/array/job/logs" | wc -l)" -eq 20 ] || fail "expected 20 task logs"
[ "$(cat "$work/array/job/logs"/*.log | grep -c ': 10 points run (0 failed)')" -eq 20 ] ||
  fail "not every task ran its 10 points: $(cat "$work/array/job/logs"/*.log)"
[ "$(ls "$work/array"/point_*.json | wc -l)" -eq 200 ] || fail "expected 200 point files"
diff -r --exclude=job "$work/local" "$work/array" || fail "job array differs from the local sweep"
"$servesim" sweep status "$work/array" | tee "$work/status.txt"
grep -q "^200 points: 200 done, 0 running, 0 pending, 0 failed$" "$work/status.txt" ||
  fail "status after the array"

# Task 7 of 20 runs points 7, 27, ..., 187: as if it had been preempted before writing them.
for i in $(seq 7 20 199); do rm "$work/array/$(printf 'point_%03d.json' "$i")"; done
"$servesim" sweep status "$work/array" | tee "$work/status.txt"
grep -q "^200 points: 190 done, 0 running, 0 pending, 10 failed$" "$work/status.txt" ||
  fail "status with task 7 lost"
grep -q "point_187.json: task 7 ended without a result" "$work/status.txt" ||
  fail "status does not name the lost task"
set +e
"$servesim" sweep collect "$work/array" -q 2>"$work/collect_err.txt"
status=$?
set -e
[ "$status" -eq 1 ] || fail "collect with 10 points missing exited $status, not 1"
grep -q "10 of 200 points have no result" "$work/collect_err.txt" || fail "collect message"
[ ! -e "$work/array/sweep.json" ] && [ ! -e "$work/array/sweep.csv" ] ||
  fail "a partial sweep.json or sweep.csv was left"
python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))
assert [p["index"] for p in m["missing"]] == list(range(7, 200, 20)), m
assert all("task 7 ended without a result" in p["reason"] for p in m["missing"]), m' \
  "$work/array/missing.json" || fail "missing.json does not list points 7, 27, ..., 187"

"$servesim" sweep resume "$work/array" | tee "$work/resume.txt"
grep -q "^Submitted job [0-9]*: array tasks 7 for 10 points without a result" "$work/resume.txt" ||
  fail "resume did not submit task 7 alone"
collect_waiting "$work/array" "collect after resume (or the task took over 300 s)"
[ ! -e "$work/array/missing.json" ] || fail "missing.json left after a whole collect"
diff -r --exclude=job "$work/local" "$work/array" || fail "resumed job differs from the local sweep"
# The resubmitted task 7 appended its second run to its log: the 10 lost points rerun.
[ "$(grep -c ': 10 points run (0 failed), 0 already done' "$work/array/job/logs/task_7.log")" -eq 2 ] ||
  fail "task 7 did not rerun its 10 points: $(cat "$work/array/job/logs/task_7.log")"
echo "slurm sweep test: passed"

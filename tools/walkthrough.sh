#!/usr/bin/env bash
# Answers the README walkthrough's four questions and prints each answer's figures as the
# README quotes them (tests/test_walkthrough.cc checks the README against this output).
# Usage: tools/walkthrough.sh capacity|routing|parallelism|energy|all [WORK_DIR]
#   capacity     GPUs (H100, TP 1) the Azure conversation trace needs at 8x its rate for
#                p99 TTFT <= 500 ms
#   routing      prefix-aware (cache_aware) vs least-loaded routing on the Mooncake
#                conversation trace at its rate and twice it
#   parallelism  TP 2 vs PP 2 across a 10 GbE link, and TP 2 over NVLink (seed Q6), per replica
#   energy       energy per output token of Llama-3.1-8B on two H100s: two TP-1 replicas or
#                one TP-2 replica, at the same Poisson load
# Environment: SERVESIM (default build/servesim). Results go to WORK_DIR (default a temporary
# folder, removed at exit).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
servesim="${SERVESIM:-$root/build/servesim}"
question="${1:-all}"
if [ $# -ge 2 ]; then
  work="$2"
  mkdir -p "$work"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi
scenarios="$root/scenarios"

run() { "$servesim" run "$@" -q; }
# jq filter over a result file.
get() { jq -r "$2" "$1"; }

capacity() {
  "$servesim" capacity "$scenarios/azure_conv_8xh100.json" -q \
    --set '/instances={"template": {"name": "r", "node": "dgx0"}, "count": 8}' \
    --set /workload/rate_scale=8.0 --param /instances/count --slo p99_ttft_ms=500 \
    -o "$work/capacity.json" >/dev/null
  local fewest
  fewest=$(get "$work/capacity.json" '.capacity')
  echo "capacity: $fewest H100s meet p99 TTFT <= 500 ms at 8x the Azure conversation rate"
  get "$work/capacity.json" \
    '.runs | sort_by(.value)[] | "  \(.value) GPUs: p99 TTFT \(.metrics.p99_ttft_ms | . * 10 | round / 10) ms, meets: \(.meets_slos)"'
}

routing() {
  echo "routing: Mooncake conversation trace, 8 x H100, prefix caching on"
  echo "  | router | trace rate | mean TTFT (ms) | p99 TTFT (ms) | prompt tokens from cache | GPU busy | requests per replica |"
  for scale in 1 2; do
    for router in least_loaded cache_aware; do
      run "$scenarios/mooncake_routing_8xh100.json" --set /policies/router/name="$router" \
        --set /workload/rate_scale=$scale.0 --set /output/requests=false \
        -o "$work/routing_${router}_$scale.json"
      jq -r --arg r "$router" --arg x "${scale}x" '.summary as $s | [.instances[].summary.completed] as $n |
        "  | \($r) | \($x) | \($s.mean_ttft_ms | round) | \($s.p99_ttft_ms | round) | \($s.prefix_reuse_fraction * 1000 | round / 10)% | \([.gpus[].busy_fraction] | add / length * 100 | round)% | \($n | min)-\($n | max) |"' \
        "$work/routing_${router}_$scale.json"
    done
  done
}

parallelism() {
  run "$scenarios/seed_q6_parallelism.json" --set /output/requests=false \
    -o "$work/parallelism.json"
  echo "parallelism: Llama-3.2-3B, 512-token prompts, 128-token outputs, one request at a time"
  echo "  | replica | median TTFT (ms) | median TPOT (ms) | output tok/s per request |"
  jq -r '.instances[] | "  | \(.name) | \(.summary.median_ttft_ms * 10 | round / 10) | \(.summary.median_tpot_ms * 100 | round / 100) | \(1000 / .summary.median_tpot_ms | round) |"' \
    "$work/parallelism.json"
}

energy() {
  local base=(--set /model=Llama-3.1-8B --set /precision/weights=bf16 --set /precision/kv=bf16
    --set /engine=vllm --set '/engine_overrides={}'
    --set '/cluster={"nodes": [{"name": "h100", "gpus": {"type": "H100-SXM", "count": 2}, "host_memory_bytes": 2e12}]}'
    --set '/policies={"router": {"name": "least_loaded"}}'
    --set '/workload={"kind": "poisson", "rate_per_s": 8, "requests": 4000, "input_tokens": {"lognormal": [6.5, 1.0], "min": 16, "max": 8000}, "output_tokens": {"lognormal": [5.0, 0.8], "min": 4, "max": 2048}}'
    --set /output/requests=false)
  run "$scenarios/closed_loop_h100.json" "${base[@]}" \
    --set '/instances=[{"name": "a", "gpus": ["h100/0"]}, {"name": "b", "gpus": ["h100/1"]}]' \
    -o "$work/energy_dp.json"
  run "$scenarios/closed_loop_h100.json" "${base[@]}" \
    --set '/instances=[{"name": "tp2", "gpus": ["h100/0", "h100/1"], "tp": 2}]' \
    -o "$work/energy_tp.json"
  echo "energy: Llama-3.1-8B on two H100s, 8 req/s Poisson, 4,000 requests"
  echo "  | placement | J per output token | mean power per GPU (W) | MBU | MFU | p99 TTFT (ms) |"
  for p in dp tp; do
    jq -r --arg p "$([ "$p" = dp ] && echo "2 x TP 1" || echo "1 x TP 2")" '
      "  | \($p) | \(.summary.energy_per_output_token_j * 1000 | round / 1000) | \([.gpus[].mean_power_w] | add / length | round) | \([.gpus[].mbu] | add / length * 1000 | round / 1000) | \([.gpus[].mfu] | add / length * 1000 | round / 1000) | \(.summary.p99_ttft_ms | round) |"' \
      "$work/energy_$p.json"
  done
}

case "$question" in
  capacity | routing | parallelism | energy) "$question" ;;
  all)
    capacity
    routing
    parallelism
    energy
    ;;
  *)
    echo "usage: tools/walkthrough.sh capacity|routing|parallelism|energy|all [WORK_DIR]" >&2
    exit 2
    ;;
esac

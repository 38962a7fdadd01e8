#pragma once
/// Serving-engine presets: the scheduling and memory behaviour each engine has by default, pinned
/// to a version (`vllm@0.12`); the bare name (`vllm`) is an alias of the default version.
/// `/engine` picks one; `/engine_overrides`, `/policies/batcher` and `/policies/kv` override any
/// field in a scenario.

#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "models/cost_model.h"
#include "models/gpu.h"
#include "models/kv_cache.h"
#include "sim/json_reader.h"

namespace servesim {

/// How an engine sizes its KV cache out of a GPU's memory by default.
enum class KvSizing : uint8_t {
  /// KV = memory x (1 - reserve_fraction) - weights - reserve_bytes.
  kFraction,
  /// vLLM: as kFraction, less the activation peak of the profiling pass it runs before sizing
  /// the cache (a forward over the token budget, then the sampler over max_num_seqs rows).
  kProfiledActivation,
  /// SGLang's mem_fraction_static rule: a reserve sized by the chunked-prefill size, the
  /// CUDA-graph batch and the GPUs per replica (on 60-160 GiB GPUs; a fraction elsewhere).
  kSglangReserve,
  /// TensorRT-LLM: KV takes 1 - reserve_fraction of the memory left after the weights and
  /// the activation peak of a profiling pass over the token budget.
  kFractionOfFree,
};

struct EnginePreset {
  std::string_view name;   ///< versioned: `vllm@0.12`
  std::string_view alias;  ///< the bare name when this is that engine's default version
  /// Host-side time per iteration not hidden behind GPU work (scheduling, input preparation,
  /// sampling hand-off, detokenisation): fixed, per running sequence, per prefill token.
  double iteration_overhead_s;
  double host_per_sequence_s;
  double host_per_prefill_token_s;
  /// Time a request spends outside the engine's iterations before its first token reaches the
  /// client: the HTTP server, chat template and tokenisation, the hand-off to the engine
  /// process, and the first token's way back. The request reaches the router this long after
  /// it is sent, so it counts once in TTFT and E2E and not in TPOT.
  double frontend_latency_s;
  /// An overlap scheduler prepares the next iteration while the GPU runs this one: host time
  /// shows only where it exceeds the GPU's.
  bool host_overlapped;
  int64_t max_num_seqs;
  /// Fixed token budget per iteration, used unless the budget is sized to the workload.
  int64_t max_num_batched_tokens;
  /// >= 0: the budget is sized as deployments of the benchmark tooling size it, so that a
  /// whole prompt fits one iteration beside the running batch: concurrency + prompt + margin,
  /// rounded up to `budget_round_tokens`. Applies to closed-loop workloads of fixed prompt
  /// length; -1 keeps the fixed budget.
  int64_t budget_margin_tokens;
  int64_t budget_round_tokens;
  /// The defaults on GPUs the engine counts as small (engine_small_gpu): -1 keeps the ones
  /// above. A budget sized to the workload stays.
  int64_t small_gpu_max_num_seqs = -1;
  int64_t small_gpu_max_num_batched_tokens = -1;
  /// Set by load_engine when the budget was sized to the workload (budget_margin_tokens).
  bool budget_from_workload = false;
  bool chunked_prefill;
  /// Prefill-only iterations before decodes (SGLang) rather than prefill chunks riding along
  /// with the running decodes (vLLM V1, TensorRT-LLM).
  bool prefill_priority;
  /// Admission reserves KV for a request's whole output, so nothing is preempted
  /// (TensorRT-LLM's GUARANTEED_NO_EVICT); otherwise the newest request is preempted.
  bool reserve_full_output;
  /// Largest decode batch replayed from a captured CUDA graph (batches are padded to the next
  /// captured size); larger batches and iterations with prefill run eagerly. 0: always eager.
  /// See engine_cuda_graph_max_batch for the value a replica uses.
  int64_t cuda_graph_max_batch;
  /// The graph batch from TP 4 on, on 60-160 GiB GPUs, where the engine's defaults differ
  /// there (SGLang); -1: cuda_graph_max_batch everywhere. An override of cuda_graph_max_batch
  /// applies at every TP.
  int64_t cuda_graph_max_batch_from_tp4;
  /// Memory left out of weights + KV (activation workspace, CUDA graphs, allocator slack): a
  /// fraction and fixed bytes, which `kv_sizing` applies as the engine does (of the whole GPU,
  /// or of what the weights and activations leave) and adds its own terms to.
  double reserve_fraction;
  double reserve_bytes;
  KvSizing kv_sizing;
  /// Automatic prefix caching on by default (`/policies/kv/prefix_caching` overrides).
  bool prefix_caching;
  /// What of a preempted request's KV its cache keeps for its return (any workload, prefix
  /// information or not: the request finds its own blocks).
  PreemptedKv preempted_kv;
  /// FP8 checkpoints carry an FP8 KV-cache scale, and the engine then stores KV in FP8.
  bool fp8_kv_with_fp8_weights;
  /// The engine's FP8 GEMMs against the vLLM-measured ones of models/kernel_fit.cc.
  EngineGemmAdjustment fp8_gemm;
  std::string_view source;
};

std::span<const EnginePreset> engine_presets();
/// The preset called `name` (versioned name or alias), or nullptr.
const EnginePreset* find_engine(std::string_view name);
/// The preset named at `value` (`vllm` when absent), with `/engine_overrides` applied and the
/// token budget sized to the scenario's workload (`doc` is the whole scenario); an unknown name
/// lists the valid ones.
EnginePreset load_engine(const std::optional<JsonValue>& value,
                         const std::optional<JsonValue>& overrides, const nlohmann::json& doc);
/// The continuous batcher's settings under this engine (before `/policies/batcher`).
nlohmann::json engine_batcher_defaults(const EnginePreset& e);
/// Whether the engine gives a replica on `gpu` its small-GPU defaults: vLLM's larger sequence
/// cap and budget are for GPUs of at least 70 GiB other than the A100.
bool engine_small_gpu(const EnginePreset& e, const GpuSpec& gpu);
/// The preset as it runs on `gpu`: the small-GPU defaults where they apply.
EnginePreset engine_on_gpu(const EnginePreset& e, const GpuSpec& gpu);
/// Memory per GPU kept out of weights and KV: a fraction of the GPU's memory plus bytes.
struct KvReserve {
  double fraction = 0;
  double bytes = 0;
};
/// The reserve the engine's start-up leaves (its `kv_sizing`) on a replica of `tp` x `pp` GPUs
/// holding `weight_bytes` each, with the batcher's token budget and sequence cap.
KvReserve engine_kv_reserve(const EnginePreset& e, const ModelSpec& model, int tp, int pp,
                            double gpu_memory_bytes, double weight_bytes, int64_t budget_tokens,
                            int64_t max_num_seqs);
/// Bytes per GPU at the activation peak of vLLM's profiling pass (a forward over the budget,
/// then the sampler over one row per sequence).
double profiled_activation_bytes(const ModelSpec& model, int64_t budget_tokens,
                                 int64_t max_num_seqs);

/// The largest CUDA-graph decode batch on a replica of `tp` GPUs of `gpu_memory_bytes` each: the
/// same value sizes the engine's memory reserve and prices its iterations.
int64_t engine_cuda_graph_max_batch(const EnginePreset& e, int tp, double gpu_memory_bytes);

/// The engine's host-time and CUDA-graph terms on the cost model of a replica of `tp` GPUs of
/// `gpu_memory_bytes` each.
void apply_engine_costs(const EnginePreset& e, int tp, double gpu_memory_bytes,
                        CostModelConfig& cost);

}  // namespace servesim

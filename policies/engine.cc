#include "policies/engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

namespace servesim {
namespace {

// Scheduling and memory defaults are each engine's own at the pinned version, read from its
// source files named in `source`. The token budget follows the deployments of the tooling that
// measured the open and held-out benchmark rows (ai-dynamo/aiconfigurator @095f58a,
// generator/rule_plugin/{vllm,sglang,trtllm}.rule; ../shared/data/validation-open/
// aiconfigurator-silicon/README.md): with a fixed budget smaller than a prompt plus the running
// batch, an unchunked prompt waits for the batch to drain.
// Host-time terms (fixed, per sequence, per prefill token) are fitted by
// tools/fit_engine_host.py on the open H200 rows of
// ../shared/data/validation-open/aiconfigurator-silicon/silicon_non_h100.csv (dense models):
//  - vLLM (81 rows, Llama-3.1-8B and -70B, FP8): the search's corner {1 ms, 40 us, 4 us} gains
//    little over {1 ms, 10 us, 0.5 us} (TPOT MAPE 5.7/10.9% against 6.2/26.2% on 70B/8B, TTFT
//    77/72% against 67/79%); the smaller terms are kept as the less extrapolating choice. The
//    8B rows are run with aiperf's 100 reused prompts (see the script).
//  - SGLang (46 rows, Llama-3.1-8B FP8): the search's corner (8 ms fixed) scores TTFT 44.8%,
//    TPOT 17.6%; {2 ms, 20 us, 2 us} scores 46.9% and 14.4% with a fixed part closer to what
//    the engine spends on a step, so it is used.
//  - TensorRT-LLM (72 rows, Llama-3.1-70B FP8): every term fits to 0. Its overlap scheduler
//    prepares step i+1 on the host while the GPU runs step i, so no host time is exposed.
//    Its FP8 GEMMs outrun the vLLM-measured ones at decode sizes: on the same rows the TPOT
//    error falls from 11.9% to 5.6% with weight-bound GEMMs at 92% of HBM bandwidth (the
//    plausible ceiling; 0.86-0.92 all score 5.0-5.9%) and half the fit's m_half (0.4-0.7 score
//    5.3-6.2%); it falls at every TP (1/2/4/8: 11.4/15.0/12.7/8.4% to 2.5/5.7/5.8/8.5%) and
//    every concurrency, so it is not one slice's fit. BF16 GEMMs keep the fit (no open rows).
//    Each point: tools/fit_engine_host.py --report-only --engine trtllm --host
//    '{"fp8_gemm_memory_efficiency": E, "fp8_gemm_m_half_factor": F}' (E 0.831055, F 1: the
//    vLLM-measured fit, 11.9%).
constexpr std::array<EnginePreset, 4> kPresets = {{
    {
        .name = "vllm@0.12",
        .alias = "vllm",
        .iteration_overhead_s = 1.0e-3,
        .host_per_sequence_s = 1.0e-5,
        .host_per_prefill_token_s = 5.0e-7,
        .frontend_latency_s = 0.0,
        .host_overlapped = false,  // host terms fitted as added to the GPU time
        .max_num_seqs = 1024,
        .max_num_batched_tokens = 8192,
        .budget_margin_tokens = 1500,
        .budget_round_tokens = 1,
        .small_gpu_max_num_seqs = 256,
        .small_gpu_max_num_batched_tokens = 2048,
        .chunked_prefill = true,
        .prefill_priority = false,
        .reserve_full_output = false,
        .cuda_graph_max_batch = 512,
        .cuda_graph_max_batch_from_tp4 = -1,
        .reserve_fraction = 0.10,
        .reserve_bytes = 0.0,
        .kv_sizing = KvSizing::kProfiledActivation,
        .prefix_caching = true,
        .preempted_kv = PreemptedKv::kAll,
        // kv_cache_dtype "auto" is the model's activation dtype in 0.12 (vllm/utils/
        // torch_utils.py kv_cache_dtype_str_to_dtype), even for a checkpoint that declares an
        // FP8 KV cache: vllm-project/vllm PR 29980, which reads it from hf_quant_config.json,
        // was opened on 3 December 2025 and merged after 0.12.0. FP8 KV takes
        // --kv-cache-dtype fp8, i.e. /precision/kv.
        .fp8_kv_with_fp8_weights = false,
        .fp8_gemm = {},
        .source = "vLLM 0.12 V1 engine: vllm/engine/arg_utils.py (usage-context defaults for "
                  "the API server on >= 70 GiB GPUs other than the A100: max_num_seqs 1024, "
                  "max_num_batched_tokens 8192; 256 and 2048 on the others; chunked prefill "
                  "on), vllm/v1/core/sched/scheduler.py (running "
                  "requests first, then waiting ones chunked into the remaining budget), "
                  "vllm/config/compilation.py (CUDA-graph sizes 1, 2, 4, multiples of 8 to "
                  "256, of 16 to min(2 x max_num_seqs, 512)), vllm/config/cache.py "
                  "(gpu_memory_utilization 0.9, enable_prefix_caching on in V1), vllm/v1/worker/"
                  "gpu_worker.py (KV = utilization x memory - weights - the activation peak "
                  "of a profiling pass over the budget and the sampler), vllm/v1/core/"
                  "kv_cache_manager.py (a preempted request's blocks freed last first, still "
                  "hashed: found again unless evicted), vllm/utils/torch_utils.py "
                  "(kv_cache_dtype auto: KV in the activation dtype, BF16 beside FP8 "
                  "weights); budget as "
                  "aiconfigurator deploys it: concurrency + prompt + 1500",
    },
    {
        .name = "sglang@0.5",
        .alias = "sglang",
        .iteration_overhead_s = 2.0e-3,
        .host_per_sequence_s = 2.0e-5,
        .host_per_prefill_token_s = 2.0e-6,
        .frontend_latency_s = 0.0,
        .host_overlapped = false,  // host terms fitted as added to the GPU time
        .max_num_seqs = 1024,
        .max_num_batched_tokens = 8192,
        .budget_margin_tokens = 1500,
        .budget_round_tokens = 1,
        .chunked_prefill = true,
        .prefill_priority = false,
        .reserve_full_output = false,
        .cuda_graph_max_batch = 256,
        .cuda_graph_max_batch_from_tp4 = 512,
        .reserve_fraction = 0.12,
        .reserve_bytes = 0.0,
        .kv_sizing = KvSizing::kSglangReserve,
        .prefix_caching = true,
        .preempted_kv = PreemptedKv::kPrompt,
        .fp8_kv_with_fp8_weights = true,
        .fp8_gemm = {},
        .source =
            "SGLang 0.5: python/sglang/srt/server_args.py (chunked_prefill_size 8192 on 80 "
            "GB-class "
            "GPUs, mem_fraction_static from a reserve of 512 MiB + 1.5 MiB per chunked-prefill "
            "token + 2 MiB per CUDA-graph batch + 128 MiB per GPU, at least 10 GiB, on 60-160 "
            "GiB GPUs, cuda_graph_max_bs 256 below TP 4 and 512 from it there, radix cache on "
            "unless "
            "disable_radix_cache), python/sglang/srt/managers/schedule_batch.py (retract_decode "
            "frees the decoded tail, the prompt stays in the radix tree), "
            "python/sglang/srt/managers/scheduler.py (get_next_batch_to_run: a new prefill batch "
            "first; with enable_mixed_chunk the running decodes ride in it); aiconfigurator "
            "deploys "
            "aggregated SGLang with mixed chunking on and max_prefill_tokens = prompt + 1500",
    },
    {
        .name = "trtllm@1.0",
        .alias = "trtllm",
        // The PyTorch executor's own host time per iteration, hidden behind the GPU's by its
        // overlap scheduler (host_overlapped): 2.8 ms + 29 us a running request, from
        // NVIDIA/TensorRT-LLM's reports: 45 ms an iteration at 1,536 requests a rank (PR 10273,
        // GB200: 29 us a request) and 4.64 ms a step for Llama-3.1-8B-FP8 at 64 clients with
        // the host as the bound (issue 13957, B200: 13,806 output tokens/s; 4.64 ms - 64 x 29
        // us = 2.8 ms). It shows where a small model's step is shorter: Llama-3.1-8B at TP 4-8.
        // An older release was slower still: trtllm-bench of an FP8 Llama-3.1-8B-architecture
        // model on one H100 (PRs 4407, 5066, mid-2025) ran ~6.0 ms a step at one client, the
        // same as BF16, where the GPU needs ~3.9 ms (tools/validate.cc, trtllm_pytorch_8b_h100).
        .iteration_overhead_s = 2.8e-3,
        .host_per_sequence_s = 2.9e-5,
        .host_per_prefill_token_s = 0.0,
        .frontend_latency_s = 0.0,
        .host_overlapped = true,
        .max_num_seqs = 2048,
        .max_num_batched_tokens = 8192,
        .budget_margin_tokens = 500,
        .budget_round_tokens = 32,
        .chunked_prefill = false,
        .prefill_priority = false,
        .reserve_full_output = true,
        .cuda_graph_max_batch = 512,
        .cuda_graph_max_batch_from_tp4 = -1,
        .reserve_fraction = 0.10,
        .reserve_bytes = 0.0,
        .kv_sizing = KvSizing::kFractionOfFree,
        .prefix_caching = true,
        .preempted_kv = PreemptedKv::kNone,
        .fp8_kv_with_fp8_weights = true,
        .fp8_gemm = {.memory_efficiency = 0.92, .m_half_factor = 0.5},
        .source =
            "TensorRT-LLM 1.0 PyTorch backend: tensorrt_llm/llmapi/llm_args.py (max_batch_size "
            "2048, disable_overlap_scheduler False: the next iteration is scheduled while the GPU "
            "runs this one, "
            "max_num_tokens 8192, enable_chunked_prefill False, KvCacheConfig "
            "free_gpu_memory_fraction 0.9, enable_block_reuse True, CUDA graphs with padding), "
            "tensorrt_llm/_torch/pyexecutor/scheduler.py (in-flight batching: whole context phases "
            "beside generation; capacity scheduler GUARANTEED_NO_EVICT by default: a request "
            "starts only "
            "when the KV of its whole output is free); host time 2.8 ms + 29 us a request "
            "(NVIDIA/TensorRT-LLM PR 10273, issue 13957); aiconfigurator deploys max_num_tokens = "
            "ceil32(concurrency + prompt "
            "+ 500), CUDA-graph batches up to 512",
    },
    {
        .name = "none",
        .alias = "",
        .iteration_overhead_s = 0.0,
        .host_per_sequence_s = 0.0,
        .host_per_prefill_token_s = 0.0,
        .frontend_latency_s = 0.0,
        .host_overlapped = false,
        .max_num_seqs = 256,
        .max_num_batched_tokens = 8192,
        .budget_margin_tokens = -1,
        .budget_round_tokens = 1,
        .chunked_prefill = true,
        .prefill_priority = false,
        .reserve_full_output = false,
        .cuda_graph_max_batch = -1,
        .cuda_graph_max_batch_from_tp4 = -1,
        .reserve_fraction = 0.10,
        .reserve_bytes = 0.0,
        .kv_sizing = KvSizing::kFraction,
        .prefix_caching = false,
        .preempted_kv = PreemptedKv::kNone,
        .fp8_kv_with_fp8_weights = false,
        .fp8_gemm = {},
        .source =
            "an idealised engine: no host overhead, vLLM-style mixed chunked prefill, fixed budget",
    },
}};

int64_t round_up(int64_t x, int64_t to) {
  return to > 1 ? (x + to - 1) / to * to : x;
}

}  // namespace

std::span<const EnginePreset> engine_presets() {
  return kPresets;
}

const EnginePreset* find_engine(std::string_view name) {
  for (const auto& p : kPresets)
    if (p.name == name || (!p.alias.empty() && p.alias == name)) return &p;
  return nullptr;
}

EnginePreset load_engine(const std::optional<JsonValue>& value,
                         const std::optional<JsonValue>& overrides, const nlohmann::json& doc) {
  const EnginePreset* found = &kPresets[0];
  if (value) {
    const std::string name = value->as_string();
    found = find_engine(name);
    if (!found) {
      std::vector<std::string_view> names;
      for (const auto& p : kPresets) {
        if (!p.alias.empty()) names.push_back(p.alias);
        names.push_back(p.name);
      }
      value->fail(fmt::format("unknown engine '{}'; valid: {}", name, fmt::join(names, ", ")));
    }
  }
  EnginePreset e = *found;
  // Read before the workload is validated (its own reader reports what is wrong there), so
  // only well-typed, in-range values count here; anything else leaves the defaults alone.
  const auto w = doc.find("workload");
  const bool has_workload = w != doc.end() && w->is_object();
  auto text = [&](const char* key) {
    const auto it = w->find(key);
    return it != w->end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto count = [&](const char* key, int64_t most) -> int64_t {
    const auto it = w->find(key);
    if (it == w->end() || !it->is_number_integer()) return -1;
    const int64_t v = it->get<int64_t>();
    return v >= 1 && v <= most ? v : -1;
  };
  // Size the budget to a closed-loop benchmark of fixed prompt length.
  if (e.budget_margin_tokens >= 0 && has_workload && text("kind") == "closed_loop") {
    const int64_t concurrency = count("concurrency", 1'000'000);
    const int64_t prompt = count("input_tokens", int64_t{1} << 24);
    // SGLang's max_prefill_tokens counts prefill tokens only; the budget here also holds the
    // running decodes, so all three come to concurrency + prompt + margin.
    if (concurrency > 0 && prompt > 0) {
      e.max_num_batched_tokens =
          round_up(concurrency + prompt + e.budget_margin_tokens, e.budget_round_tokens);
      e.budget_from_workload = true;
    }
  }
  // A workload without prefix information (Poisson or closed-loop synthetic prompts, Azure
  // traces) cannot hit a prefix cache; leaving it off gives the same result and keeps the
  // replica's closed-form decode, which a cache that can reclaim blocks rules out.
  if (has_workload) {
    const std::string kind = text("kind");
    const bool has_prefixes = kind == "sessions" ||
                              (kind == "trace" && text("format") == "mooncake_jsonl") ||
                              (kind == "closed_loop" && count("distinct_prompts", INT64_MAX) > 0);
    if (!has_prefixes) e.prefix_caching = false;
  }
  if (overrides) {
    JsonObject o = overrides->object();
    // Bounded so that an iteration's host time stays far inside what simulated time can hold.
    auto host_s = [](const JsonValue& x, double most_s) {
      const double v = x.nonnegative_double();
      if (v > most_s) x.fail(fmt::format("must be at most {:g} s, got {:g}", most_s, v));
      return v;
    };
    if (auto x = o.maybe("iteration_overhead_s")) e.iteration_overhead_s = host_s(*x, 10);
    if (auto x = o.maybe("host_per_sequence_s")) e.host_per_sequence_s = host_s(*x, 1);
    if (auto x = o.maybe("host_per_prefill_token_s")) e.host_per_prefill_token_s = host_s(*x, 1);
    if (auto x = o.maybe("frontend_latency_s")) e.frontend_latency_s = host_s(*x, 10);
    if (auto x = o.maybe("cuda_graph_max_batch")) {
      e.cuda_graph_max_batch = x->int_in_range(0, 1 << 20);
      e.cuda_graph_max_batch_from_tp4 = -1;
    }
    if (auto x = o.maybe("prefix_caching")) e.prefix_caching = x->as_bool();
    if (auto x = o.maybe("host_overlapped")) e.host_overlapped = x->as_bool();
    if (auto x = o.maybe("preempted_kv")) {
      const std::string v = x->as_string();
      if (v == "none")
        e.preempted_kv = PreemptedKv::kNone;
      else if (v == "prompt")
        e.preempted_kv = PreemptedKv::kPrompt;
      else if (v == "all")
        e.preempted_kv = PreemptedKv::kAll;
      else
        x->fail(fmt::format("must be none, prompt or all, got '{}'", v));
    }
    if (auto x = o.maybe("fp8_kv_with_fp8_weights")) e.fp8_kv_with_fp8_weights = x->as_bool();
    if (auto x = o.maybe("fp8_gemm_memory_efficiency"))
      e.fp8_gemm.memory_efficiency = x->number_in_range(0.05, 1.0);
    if (auto x = o.maybe("fp8_gemm_m_half_factor"))
      e.fp8_gemm.m_half_factor = x->number_in_range(0.0, 10.0);
    o.finish();
  }
  return e;
}

nlohmann::json engine_batcher_defaults(const EnginePreset& e) {
  return {{"name", "continuous"},
          {"max_num_seqs", e.max_num_seqs},
          {"max_num_batched_tokens", e.max_num_batched_tokens},
          {"chunked_prefill", e.chunked_prefill},
          {"prefill_priority", e.prefill_priority},
          {"reserve_full_output", e.reserve_full_output}};
}

bool engine_small_gpu(const EnginePreset& e, const GpuSpec& gpu) {
  if (e.small_gpu_max_num_seqs < 0 && e.small_gpu_max_num_batched_tokens < 0) return false;
  // vllm/engine/arg_utils.py (EngineArgs._set_default_args): the larger defaults need
  // device_memory >= 70 GiB and "a100" not in the device name (tests/engine/test_arg_utils.py
  // test_defaults_with_usage_context checks both tiers).
  std::string name = gpu.name;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return gpu.memory_bytes < 70.0 * 1024 * 1024 * 1024 || name.find("a100") != std::string::npos;
}

EnginePreset engine_on_gpu(const EnginePreset& e, const GpuSpec& gpu) {
  EnginePreset on = e;
  if (!engine_small_gpu(e, gpu)) return on;
  if (e.small_gpu_max_num_seqs >= 0) on.max_num_seqs = e.small_gpu_max_num_seqs;
  if (e.small_gpu_max_num_batched_tokens >= 0 && !e.budget_from_workload)
    on.max_num_batched_tokens = e.small_gpu_max_num_batched_tokens;
  return on;
}

double profiled_activation_bytes(const ModelSpec& model, int64_t budget_tokens,
                                 int64_t max_num_seqs) {
  // vLLM's logged profiling peaks ("PyTorch activation peak memory", H100): Llama-3-8B at 8,192
  // batched tokens 1.26 GiB at TP 1 and TP 2 alike (vllm-project/vllm PR 10511, 256
  // sequences), LLaVA-1.6-Mistral-7B at 16,384 tokens 1.97 GiB (a vLLM 0.10.2 start-up log).
  // About 34 bytes per budget token and hidden unit, not divided by TP (it did not fall at TP
  // 2), reproduce both within 10% (1.19 and 2.16 GiB) beside the sampler's fp32 logits of one
  // row per sequence (vllm/v1/worker/gpu_model_runner.py profile_run: _dummy_run over the
  // budget, then _dummy_sampler_run). An estimate, not a profile: it leaves out the few
  // hundred MB the logs put outside PyTorch.
  constexpr double kBytesPerTokenAndHidden = 34.0;
  const auto tokens = static_cast<double>(budget_tokens);
  const auto rows = static_cast<double>(std::min(budget_tokens, max_num_seqs));
  return kBytesPerTokenAndHidden * tokens * static_cast<double>(model.hidden_size) +
         4.0 * rows * static_cast<double>(model.vocab_size);
}

namespace {
/// The GPU sizes (60-160 GiB) whose SGLang defaults the reserve and graph rules describe.
bool sglang_reserve_tier(double gpu_memory_bytes) {
  const double gpu_gib = gpu_memory_bytes / (1024.0 * 1024.0 * 1024.0);
  return gpu_gib >= 60 && gpu_gib <= 160;
}
}  // namespace

KvReserve engine_kv_reserve(const EnginePreset& e, const ModelSpec& model, int tp, int pp,
                            double gpu_memory_bytes, double weight_bytes, int64_t budget_tokens,
                            int64_t max_num_seqs) {
  constexpr double kMiB = 1024.0 * 1024.0;
  switch (e.kv_sizing) {
    case KvSizing::kFraction:
      break;
    case KvSizing::kProfiledActivation:
      return {e.reserve_fraction,
              e.reserve_bytes + profiled_activation_bytes(model, budget_tokens, max_num_seqs)};
    case KvSizing::kFractionOfFree: {
      // tensorrt_llm/_torch/pyexecutor/_util.py (KvCacheCreator.estimate_max_tokens): after a
      // profiling pass of context requests over max_num_tokens, the KV cache takes
      // free_gpu_memory_fraction of what is free. The pass's peak is priced as vLLM's forward
      // (its logits are one row per request, left out); the NCCL and CUDA-graph memory it
      // also counts are not.
      const double activation = profiled_activation_bytes(model, budget_tokens, 1);
      const double free = std::max(0.0, gpu_memory_bytes - weight_bytes - activation);
      return {0.0, e.reserve_bytes + activation + e.reserve_fraction * free};
    }
    case KvSizing::kSglangReserve: {
      // sgl-project/sglang python/sglang/srt/server_args.py (PR 10975, 0.5.4 on), GPUs of
      // 60-160 GiB: chunked_prefill_size 8,192, cuda_graph_max_bs 256 below TP 4 and 512 from
      // it, and mem_fraction_static = 1 - reserve / memory with reserve (MiB) = 512 + 1.5 x
      // chunked_prefill_size + 2 x cuda_graph_max_bs + tp x pp / 8 x 1024, at least 10 GiB.
      // Other GPU sizes have other tiers, not modelled: they keep the preset's fraction.
      if (!sglang_reserve_tier(gpu_memory_bytes)) break;
      const auto graph_batch = static_cast<double>(
          std::max<int64_t>(0, engine_cuda_graph_max_batch(e, tp, gpu_memory_bytes)));
      const double reserve_mib = std::max(
          512 + 1.5 * 8192 + 2 * graph_batch + static_cast<double>(tp * pp) / 8 * 1024, 10240.0);
      return {0.0, reserve_mib * kMiB};
    }
  }
  return {e.reserve_fraction, e.reserve_bytes};
}

int64_t engine_cuda_graph_max_batch(const EnginePreset& e, int tp, double gpu_memory_bytes) {
  // sgl-project/sglang python/sglang/srt/server_args.py (0.5): cuda_graph_max_bs 256 below
  // TP 4 and 512 from it on GPUs of 60-160 GiB.
  if (e.cuda_graph_max_batch_from_tp4 >= 0 && tp >= 4 && sglang_reserve_tier(gpu_memory_bytes))
    return e.cuda_graph_max_batch_from_tp4;
  return e.cuda_graph_max_batch;
}

void apply_engine_costs(const EnginePreset& e, int tp, double gpu_memory_bytes,
                        CostModelConfig& cost) {
  cost.iteration_overhead_s = e.iteration_overhead_s;
  cost.host_per_sequence_s = e.host_per_sequence_s;
  cost.host_per_prefill_token_s = e.host_per_prefill_token_s;
  cost.host_overlapped = e.host_overlapped;
  cost.cuda_graph_max_batch = engine_cuda_graph_max_batch(e, tp, gpu_memory_bytes);
  cost.engine_fp8_gemm = e.fp8_gemm;
}

}  // namespace servesim

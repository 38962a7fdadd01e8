#include "policies/engine.h"

#include <fmt/format.h>

#include <array>
#include <vector>

namespace servesim {
namespace {

// Scheduling defaults are each engine's own defaults for an online server on an 80 GB-class GPU.
// Iteration overheads: vLLM's is fitted to the open benchmark_serving run in
// ../shared/data/validation-open (Llama-3-8B on one H100; `servesim validate`, table
// vllm_llama3_8b_h100); SGLang's and TensorRT-LLM's have no open measurement here and are set
// from their architecture relative to vLLM (SGLang overlaps scheduling with the GPU;
// TensorRT-LLM's runtime is C++), so treat them as assumptions.
constexpr std::array<EnginePreset, 4> kPresets = {{
    {"vllm", 1.0e-3, 1024, 8192, true, false, 0.10, 0.0,
     "vLLM V1 on GPUs with >= 70 GiB (arg_utils usage-context defaults for the API server): "
     "max_num_seqs 1024, max_num_batched_tokens 8192, chunked prefill mixed into decode "
     "batches, gpu_memory_utilization 0.9 (activation workspace inside the 10%)"},
    {"sglang", 0.5e-3, 1024, 8192, true, true, 0.12, 0.0,
     "SGLang server defaults: chunked_prefill_size 8192 on 80 GB GPUs, prefill batches run "
     "apart from decode batches (enable_mixed_chunk off), mem_fraction_static ~0.88"},
    {"trtllm", 0.5e-3, 2048, 8192, false, false, 0.10, 0.0,
     "trtllm-serve defaults: max_batch_size 2048, max_num_tokens 8192, in-flight batching of "
     "whole context phases with generation, chunked context off, KV from 0.9 of free memory"},
    {"none", 0.0, 256, 8192, true, false, 0.10, 0.0,
     "an idealised engine: no host overhead, vLLM-style mixed chunked prefill"},
}};

}  // namespace

std::span<const EnginePreset> engine_presets() {
  return kPresets;
}

const EnginePreset* find_engine(std::string_view name) {
  for (const auto& p : kPresets)
    if (p.name == name) return &p;
  return nullptr;
}

const EnginePreset& load_engine(const std::optional<JsonValue>& value) {
  if (!value) return kPresets[0];
  const std::string name = value->as_string();
  if (const EnginePreset* p = find_engine(name)) return *p;
  std::vector<std::string_view> names;
  for (const auto& p : kPresets) names.push_back(p.name);
  value->fail(fmt::format("unknown engine '{}'; valid: {}", name, fmt::join(names, ", ")));
}

}  // namespace servesim

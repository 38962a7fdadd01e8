#pragma once
/// Serving-engine presets: the scheduling and memory behaviour each engine has by default.
/// `/engine` picks one; `/policies/batcher`, `/policies/kv` and `/engine_overrides` override any
/// field in a scenario.

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "sim/json_reader.h"

namespace servesim {

struct EnginePreset {
  std::string_view name;
  /// Host-side time per iteration not hidden behind GPU work: scheduling, input preparation,
  /// sampling, detokenisation hand-off.
  double iteration_overhead_s;
  int64_t max_num_seqs;
  int64_t max_num_batched_tokens;
  bool chunked_prefill;
  bool prefill_priority;
  /// Memory left out of weights + KV: a fraction of the GPU's memory plus fixed bytes
  /// (activation workspace, CUDA graphs, allocator slack).
  double reserve_fraction;
  double reserve_bytes;
  std::string_view source;
};

std::span<const EnginePreset> engine_presets();
/// The preset called `name`, or nullptr.
const EnginePreset* find_engine(std::string_view name);
/// The preset named at `value` (`vllm` when absent); an unknown name lists the valid ones.
const EnginePreset& load_engine(const std::optional<JsonValue>& value);

}  // namespace servesim

#pragma once
/// Iteration-level (continuous) batching as in Orca and vLLM: every iteration, running
/// requests decode one token or prefill their next chunk, then waiting requests join while the
/// token budget, the sequence limit and the KV cache allow. When a running request cannot
/// grow its KV, the most recently admitted one is preempted and later recomputed.

#include <cstdint>

#include "models/batcher.h"

namespace servesim {

struct ContinuousBatcherConfig {
  int64_t max_num_seqs = 256;
  int64_t max_num_batched_tokens = 8192;
  /// Split long prompts into chunks that fit the token budget (vLLM V1 default). Without it a
  /// prompt longer than the budget runs alone in one iteration.
  bool chunked_prefill = true;
};

class ContinuousBatcher final : public Batcher {
 public:
  explicit ContinuousBatcher(ContinuousBatcherConfig config) : config_(config) {}
  std::string_view name() const override { return "continuous"; }
  void plan(BatchContext& ctx, IterationPlan& plan) override;

 private:
  ContinuousBatcherConfig config_;
};

}  // namespace servesim

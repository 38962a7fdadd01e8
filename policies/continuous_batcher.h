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
  /// Prefill first: when waiting requests can be admitted, the iteration prefills only and the
  /// running decodes sit it out (SGLang's default, and vLLM before V1). Otherwise prefill
  /// chunks ride along with the decodes in one iteration (vLLM V1, TensorRT-LLM).
  bool prefill_priority = false;
  /// Admit a request only when the KV of its whole prompt and output fits beside what the
  /// running requests will reach (TensorRT-LLM's GUARANTEED_NO_EVICT capacity scheduler):
  /// nothing is ever preempted; requests wait for memory instead.
  bool reserve_full_output = false;
};

class ContinuousBatcher final : public Batcher {
 public:
  explicit ContinuousBatcher(ContinuousBatcherConfig config) : config_(config) {}
  std::string_view name() const override { return "continuous"; }
  void plan(BatchContext& ctx, IterationPlan& plan) override;
  bool admits_none_while_decoding(BatchContext& ctx) override;
  /// Mixed iterations with a token budget above the sequence limit: decodes never run out of
  /// budget, so all of them run in every iteration.
  bool plans_decode_set() const override {
    return !config_.prefill_priority && config_.max_num_batched_tokens > config_.max_num_seqs;
  }
  void plan_decode_set(DecodeSetContext& ctx, IterationPlan& plan) override;

 private:
  /// Admits waiting requests first come first served while budget, sequences and KV allow;
  /// returns the budget left. With `remember_blocked` (no reclaimer behind the pool), a head
  /// that did not fit is remembered, and not read again while it would not fit either.
  int64_t admit_waiting(BatchContext& ctx, IterationPlan& plan, int64_t budget,
                        bool remember_blocked = false);
  /// A prefill-only iteration; false (plan untouched) when no new request can start.
  bool plan_prefill_only(BatchContext& ctx, IterationPlan& plan);

  /// Blocks `r` holds once its prompt and whole output are in the KV cache.
  int64_t full_blocks(const KvBlockPool& kv, const Request& r) const;

  ContinuousBatcherConfig config_;
  /// The waiting head that lacked KV blocks at this budget, and the blocks it needed. Under
  /// overload the head waits through many iterations, and it is a cold request: reading it
  /// every iteration costs a cache miss each.
  struct BlockedHead {
    const Request* request = nullptr;
    int64_t budget = 0;
    int64_t need_blocks = 0;
  } blocked_;
};

}  // namespace servesim

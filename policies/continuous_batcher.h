#pragma once
/// Iteration-level (continuous) batching as in Orca and vLLM: every iteration, running
/// requests decode one token or prefill their next chunk, then waiting requests join while the
/// token budget, the sequence limit and the KV cache allow. When a running request cannot
/// grow its KV, the most recently admitted one is preempted and later recomputed.

#include <algorithm>
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
  /// Batch waiting (TensorRT-LLM 1.1's `batch_wait_timeout_iters`, `batch_wait_max_tokens_ratio`;
  /// both 0, off, by default): while requests decode, new prompts are held back until they and
  /// the decodes fill `batch_wait_max_tokens_ratio` of the token budget, or until prompts
  /// have been held this many iterations; the count restarts when they run. As
  /// PyExecutor._schedule and _waiting_requests do (tensorrt_llm/_torch/pyexecutor/
  /// py_executor.py), either at 0 holds nothing: the timeout is met at once, or the ratio is.
  /// Only prompts not yet started are held (TensorRT-LLM holds a chunked prompt's later chunks
  /// too).
  int64_t batch_wait_timeout_iters = 0;
  double batch_wait_max_tokens_ratio = 0;
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
  bool prefills_whole_prompts() const override { return !config_.chunked_prefill; }

 private:
  /// Admits waiting requests first come first served while budget, sequences and KV allow;
  /// returns the budget left. With `remember_blocked` (decode-set mode, where the cache holds
  /// only what preempted requests kept), a head that did not fit is remembered, and not read
  /// again while the free and the other cached blocks stay short of what it needs.
  int64_t admit_waiting(BatchContext& ctx, IterationPlan& plan, int64_t budget,
                        bool remember_blocked = false);
  /// The waiting head is the one found blocked at this budget, and still lacks the blocks.
  bool head_stays_blocked(BatchContext& ctx, int64_t budget) const;
  /// Notes the waiting head as blocked if its try at this budget would fail.
  void note_blocked_head(BatchContext& ctx, int64_t budget);
  /// Prompt tokens one iteration prefills of `remaining`, `done` being computed already: all
  /// of them when prompts are not chunked (such a prompt waits until it fits), else what fits
  /// the budget and the VRAM pool at once (a host tier takes earlier blocks, not the chunk's).
  int64_t prefill_chunk(const KvBlockPool& kv, int64_t done, int64_t remaining,
                        int64_t budget) const {
    return config_.chunked_prefill ? std::min({budget, remaining, vram_chunk_cap(kv, done)})
                                   : remaining;
  }
  /// A running request's next prompt chunk: within the budget and what VRAM holds at once.
  static int64_t continuing_chunk(const KvBlockPool& kv, const Request& r, int64_t budget) {
    return std::min({budget, r.prefill_target_tokens() - r.computed_tokens,
                     vram_chunk_cap(kv, r.computed_tokens)});
  }
  /// The longest chunk whose blocks the whole VRAM pool holds, after `done` tokens.
  static int64_t vram_chunk_cap(const KvBlockPool& kv, int64_t done) {
    return kv.total_blocks() * kv.block_tokens() - done % kv.block_tokens();
  }
  /// Prompt tokens admit_waiting would start at this budget, without starting them.
  int64_t admissible_tokens(BatchContext& ctx, int64_t budget) const;
  /// Batch waiting: true when this iteration's new prompts are held back, beside `decodes`
  /// decoding requests, with `budget` left for prompts.
  bool hold_prompts(BatchContext& ctx, int64_t budget, int64_t decodes);
  /// A prefill-only iteration; false (plan untouched) when no new request can start.
  bool plan_prefill_only(BatchContext& ctx, IterationPlan& plan);

  /// Blocks `r` holds once its prompt and whole output are in the KV cache.
  int64_t full_blocks(const KvBlockPool& kv, const Request& r) const;

  ContinuousBatcherConfig config_;
  /// Iterations the prompts at hand have been held back (batch waiting).
  int64_t held_iters_ = 0;
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

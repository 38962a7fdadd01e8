#pragma once
/// The scheduling interface of a replica: which requests run in the next iteration and how
/// many tokens each processes. Implementations live in policies/ (continuous, static).

#include <cstdint>
#include <deque>
#include <string_view>
#include <vector>

#include "models/kv_cache.h"
#include "models/request.h"
#include "models/running_list.h"
#include "sim/time.h"

namespace servesim {

struct ScheduledItem {
  Request* request;
  int64_t new_tokens;  ///< prefill chunk length, or 1 for a decode step
};

struct IterationPlan {
  std::vector<ScheduledItem> items;
  /// Members of the replica's decode set that decode one token each this iteration, in
  /// aggregate (DecodeSetContext); they are not listed in `items`.
  int64_t decode_set_members = 0;
  void clear() {
    items.clear();
    decode_set_members = 0;
  }
  bool empty() const { return items.empty() && decode_set_members == 0; }
};

/// What a batcher may see and do on its replica.
class BatchContext {
 public:
  virtual ~BatchContext() = default;
  virtual std::deque<Request*>& waiting() = 0;
  /// Running requests in admission order (compact() before reading them by position).
  virtual RunningList& running() = 0;
  virtual KvBlockPool& kv() = 0;
  /// Frees `r`'s KV and puts it back at the head of the waiting queue; its prompt and the
  /// tokens generated so far are prefilled again when it is next scheduled (recompute).
  virtual void preempt(Request* r) = 0;
  /// Before waiting request `r` tries to join: it takes back what the KV cache kept of it when
  /// it was preempted (computed tokens it need not prefill again). If it does not join,
  /// return_kept_kv gives that back to the cache, so no waiting request holds KV.
  virtual void resume_kept_kv(Request* r) { (void)r; }
  virtual void return_kept_kv(Request* r) { (void)r; }
  /// KV blocks the replica's cache holds (cached prefixes, what preempted requests kept): a
  /// waiting request's try to join may take them back or evict them, even when it fails.
  virtual int64_t cached_kv_blocks() const { return 0; }
  /// Of those, the blocks the cache kept of waiting request `r` (0: none).
  virtual int64_t kept_kv_blocks(const Request& r) const {
    (void)r;
    return 0;
  }
  virtual Time now() const = 0;
};

/// A replica whose decoding requests are kept in aggregate (models/decode_set.h): the first
/// decode_set_size() running requests decode, in admission order, and their counters are not
/// brought up to date until they leave, so a batcher planning here must not read them.
class DecodeSetContext : public BatchContext {
 public:
  virtual int64_t decode_set_size() const = 0;
  /// KV blocks the decode set needs for one more token each.
  virtual int64_t decode_set_growth_blocks() const = 0;
  /// Takes those blocks; the plan then decodes every member.
  virtual void grow_decode_set(IterationPlan& plan) = 0;
};

class Batcher {
 public:
  virtual ~Batcher() = default;
  virtual std::string_view name() const = 0;
  /// Fills `plan` for the next iteration (empty: nothing to run now).
  virtual void plan(BatchContext& ctx, IterationPlan& plan) = 0;
  /// True when, with every running request decoding and none finishing, no waiting request
  /// could join the batch (sequence limit, token budget, or KV blocks short while decode only
  /// takes more of them). The plan then repeats step after step, and requests arriving at the
  /// back of the queue change nothing, so the replica may compute the steps in closed form.
  /// Asked in step mode only when the KV cache cannot reclaim blocks (no prefix cache, no host
  /// tier); in decode-set mode also while the cache holds what preempted requests kept.
  virtual bool admits_none_while_decoding(BatchContext& ctx) { return ctx.waiting().empty(); }
  /// True when the batcher can plan with DecodeSetContext: every decoding request runs in
  /// every iteration, and only the newest running request may still be prefilling.
  virtual bool plans_decode_set() const { return false; }
  /// As plan(), in O(requests that change) rather than O(batch).
  virtual void plan_decode_set(DecodeSetContext& ctx, IterationPlan& plan) {
    (void)ctx, (void)plan;
  }
  /// True when a prompt is prefilled in one iteration, so that all of its KV is in VRAM at
  /// once: a prompt longer than the VRAM pool can then never run, host tier or not.
  virtual bool prefills_whole_prompts() const { return true; }
  /// When an idle replica must look again even if nothing arrives (a fill timeout).
  virtual Time next_wakeup(BatchContext& ctx) {
    (void)ctx;
    return Time::max();
  }
};

}  // namespace servesim

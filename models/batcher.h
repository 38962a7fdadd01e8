#pragma once
/// The scheduling interface of a replica: which requests run in the next iteration and how
/// many tokens each processes. Implementations live in policies/ (continuous, static).

#include <cstdint>
#include <deque>
#include <string_view>
#include <vector>

#include "models/kv_cache.h"
#include "models/request.h"
#include "sim/time.h"

namespace servesim {

struct ScheduledItem {
  Request* request;
  int64_t new_tokens;  ///< prefill chunk length, or 1 for a decode step
};

struct IterationPlan {
  std::vector<ScheduledItem> items;
  void clear() { items.clear(); }
  bool empty() const { return items.empty(); }
};

/// What a batcher may see and do on its replica.
class BatchContext {
 public:
  virtual ~BatchContext() = default;
  virtual std::deque<Request*>& waiting() = 0;
  virtual std::vector<Request*>& running() = 0;
  virtual KvBlockPool& kv() = 0;
  /// Frees `r`'s KV and puts it back at the head of the waiting queue; its prompt and the
  /// tokens generated so far are prefilled again when it is next scheduled (recompute).
  virtual void preempt(Request* r) = 0;
  virtual Time now() const = 0;
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
  /// Only asked when the KV cache cannot reclaim blocks (no prefix cache, no host tier).
  virtual bool admits_none_while_decoding(BatchContext& ctx) { return ctx.waiting().empty(); }
  /// When an idle replica must look again even if nothing arrives (a fill timeout).
  virtual Time next_wakeup(BatchContext& ctx) {
    (void)ctx;
    return Time::max();
  }
};

}  // namespace servesim

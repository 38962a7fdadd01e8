#include "policies/static_batcher.h"

#include <algorithm>

namespace servesim {

void StaticBatcher::plan(BatchContext& ctx, IterationPlan& plan) {
  RunningList& running = ctx.running();
  running.compact();  // read by position below
  std::deque<Request*>& waiting = ctx.waiting();
  if (running.empty()) {
    // Form the next batch once it is full or its oldest member has waited long enough.
    if (waiting.empty()) return;
    const bool full = static_cast<int64_t>(waiting.size()) >= config_.batch_size;
    if (!full && ctx.now() < waiting.front()->spec.arrival + config_.fill_timeout) return;
    while (!waiting.empty() && static_cast<int64_t>(running.size()) < config_.batch_size) {
      Request* r = waiting.front();
      // The whole prompt (unchunked) must fit now.
      if (!ctx.kv().try_grow(r->kv_blocks, r->prefill_target_tokens())) break;
      waiting.pop_front();
      running.push_back(r);
      r->state = RequestState::kRunning;
      if (r->first_scheduled == Time::max()) r->first_scheduled = ctx.now();
    }
  }
  // Run the batch: the first iteration prefills every prompt at once, then all decode together.
  for (size_t i = 0; i < running.size(); ++i) {
    Request* r = running[i];
    const int64_t n = r->in_decode ? 1 : r->prefill_target_tokens() - r->computed_tokens;
    if (!ctx.kv().try_grow(r->kv_blocks, r->computed_tokens + n)) {
      // Out of KV mid-batch: the newest member leaves and waits for a later batch (recompute).
      Request* victim = running.back();
      ctx.preempt(victim);
      if (victim != r) --i;  // retry r
      continue;
    }
    plan.items.push_back({r, n});
  }
}

Time StaticBatcher::next_wakeup(BatchContext& ctx) {
  if (!ctx.running().empty() || ctx.waiting().empty()) return Time::max();
  const Time due = ctx.waiting().front()->spec.arrival + config_.fill_timeout;
  // A batch already due that could not form waits for the next arrival, not for a timer.
  return due > ctx.now() ? due : Time::max();
}

}  // namespace servesim

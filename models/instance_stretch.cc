// Closed-form decode stretches: between two changes of the batch, decode steps follow a known
// formula, so a stretch of them is planned at once (plan_stretch) and cut short when an arrival
// or a change of pace needs a plan at an earlier step (truncate_stretch). The figures routers
// and samplers read mid-stretch (outstanding tokens, KV in use) are those a step-by-step run
// would show at that instant.
#include <algorithm>
#include <cmath>
#include <limits>

#include "models/instance.h"

namespace servesim {

int64_t Instance::outstanding_of(const Request& r, int64_t steps_ahead) {
  const int64_t prefill_left = r.in_decode ? 0 : r.prefill_target_tokens() - r.computed_tokens;
  return prefill_left +
         std::max<int64_t>(0, r.predicted_output_tokens - r.generated_tokens - steps_ahead);
}

int64_t Instance::resident_outstanding_tokens() const {
  // Mid-stretch, the steps already past count as done, as they would have in step mode: each
  // request's decode left shrinks by min(its decode left, steps done).
  const int64_t done = stretch_steps_done();
  if (decode_set_mode_) return outstanding_tokens_ + decode_set_.predicted_decode_left(done);
  if (done == 0) return outstanding_tokens_;
  if (stretch_left_sorted_.empty())
    return outstanding_tokens_ - done * static_cast<int64_t>(plan_.items.size());
  if (stretch_left_prefix_.empty()) {
    std::sort(stretch_left_sorted_.begin(), stretch_left_sorted_.end());
    stretch_left_prefix_.assign(1, 0);
    for (int64_t v : stretch_left_sorted_)
      stretch_left_prefix_.push_back(stretch_left_prefix_.back() + v);
  }
  const auto first_not_below =
      std::lower_bound(stretch_left_sorted_.begin(), stretch_left_sorted_.end(), done);
  const auto below = first_not_below - stretch_left_sorted_.begin();
  const int64_t credit = stretch_left_prefix_[static_cast<size_t>(below)] +
                         done * static_cast<int64_t>(stretch_left_sorted_.end() - first_not_below);
  return outstanding_tokens_ - credit;
}

int64_t Instance::outstanding_tokens_scan() const {
  int64_t total = incoming_tokens_;
  for (const Request* r : waiting_) total += outstanding_of(*r);
  const int64_t done = stretch_steps_done();
  for (const Request* r : running_)
    total +=
        DecodeSet::is_member(*r)
            ? std::max<int64_t>(0, r->predicted_output_tokens - decode_set_.generated(*r, done))
            : outstanding_of(*r, done);
  return total;
}

int64_t Instance::kv_used_blocks_now() const {
  if (!busy_ || steps_.steps <= 1) return kv_.used_blocks();
  // A step-by-step run would hold, now, the blocks of the step in flight: steps ending at or
  // before now are done (iteration ends precede samples at the same instant).
  const int64_t done = planned_steps_ending_before(sim_.now().ns + 1);
  if (decode_set_mode_) {
    // The pool holds the members' blocks of the stretch's first step; later growth takes free
    // blocks, then cached ones (evicted to make room, so the pool holds no more).
    const int64_t growth = decode_set_.held_blocks(done + 1) - decode_set_.held_blocks(1);
    return kv_.used_blocks() + std::min(growth, kv_.free_blocks());
  }
  int64_t used = kv_.used_blocks();
  for (const ScheduledItem& item : plan_.items)
    used += std::max<int64_t>(
        0, kv_.blocks_for(item.request->computed_tokens + done + 1) - item.request->kv_blocks);
  return used;
}

int64_t Instance::stretch_steps_done() const {
  if (!busy_ || steps_.steps <= 1) return 0;
  return planned_steps_ending_before(sim_.now().ns);
}

int64_t Instance::planned_step_end_ns(int64_t k) const {
  const int64_t first_end_ns = iteration_start_.ns + steps_.first_ns;
  if (k == 0) return first_end_ns;
  if (k == steps_.steps - 1) return last_step_end_ns_;
  // Summed from the nearer end of the stretch.
  if (2 * k < steps_.steps) return first_end_ns + steps_.later_sums(1, k + 1).sum_ns;
  return last_step_end_ns_ - steps_.later_sums(k + 1, steps_.steps).sum_ns;
}

int64_t Instance::planned_steps_ending_before(int64_t t_ns) const {
  if (steps_.steps <= 0) return 0;
  const int64_t first_end_ns = iteration_start_.ns + steps_.first_ns;
  if (t_ns <= first_end_ns) return 0;
  if (t_ns > last_step_end_ns_) return steps_.steps;
  // The first step and some of the later ones, never the last.
  return 1 + step_clock_.steps_within(steps_, t_ns - first_end_ns);
}

void Instance::cut_steps(int64_t keep) {
  steps_.steps = keep;
  later_sums_ = steps_.later_sums(1, keep);
  step_clock_ = LaterStepClock(steps_, keep - 2);
  // Steps done before an instant within the stretch are at most keep - 1, and each step done
  // leaves a member's predicted decode left the same or lower.
  if (decode_set_mode_) stretch_decode_left_floor_ = decode_set_.predicted_decode_left(keep - 1);
  last_step_end_ns_ = iteration_start_.ns + steps_.first_ns + later_sums_.sum_ns;
}

void Instance::truncate_stretch() {
  // In step mode the arrival would be planned at the end of the step in flight: an arrival at
  // exactly a step's end (Phase::kArrival) is seen by the plan made then.
  const int64_t keep = planned_steps_ending_before(sim_.now().ns) + 1;
  if (keep >= steps_.steps) return;
  cut_steps(keep);
  sim_.cancel(done_event_);
  done_event_ = sim_.schedule_at(Time::from_ns(last_step_end_ns_), Phase::kIterationDone,
                                 [this] { finish_iteration(); });
}

namespace {

/// The most steps, at most `steps`, whose KV growth `fits` (monotone: true up to some k >= 1).
template <class Fits>
int64_t most_steps_that_fit(int64_t steps, Fits fits) {
  if (fits(steps)) return steps;
  int64_t lo = 1, hi = steps;  // fits(lo), !fits(hi)
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace

int64_t Instance::stretch_limit(const BatchShape& shape) {
  const auto n = static_cast<int64_t>(plan_.items.size());
  // The next plan repeats this one only if nothing waits to join, every running request
  // decodes, and no KV moves between tiers.
  // With requests waiting, the batcher must certify that none can join until one finishes,
  // and no reclaim (prefix eviction, host offload) may change the pool behind its back.
  const bool reclaimable = config_.kv_policy.prefix_caching ||
                           config_.kv_policy.mode == KvMode::kHostOffload ||
                           prefix_cache_.own_entries() > 0;
  const bool waiting_stays =
      !waiting_.empty() && !reclaimable && batcher_->admits_none_while_decoding(*this);
  if ((!waiting_.empty() && !waiting_stays) || shape.decode_sequences != n ||
      n != static_cast<int64_t>(running_.size()))
    return 1;
  // One pass over the batch: the step at which the first request finishes or reaches the
  // maximum context, the least predicted decode left (for the routers' credit), and how many
  // tokens still fit in each request's last KV block. Blocks a request needs after k steps
  // depend only on that slack: ceil(max(0, k - 1 - slack) / block_tokens).
  const int64_t bt = kv_.block_tokens();
  int64_t steps = std::numeric_limits<int64_t>::max();
  int64_t least_left = std::numeric_limits<int64_t>::max();
  slack_count_.assign(static_cast<size_t>(bt), 0);
  bool blocks_as_planned = true;  // each holds exactly the blocks of its step-0 tokens
  for (const ScheduledItem& item : plan_.items) {
    const Request* r = item.request;
    steps = std::min({steps, r->spec.output_tokens - r->generated_tokens,
                      max_context_tokens_ - r->context_tokens()});
    least_left = std::min(least_left, r->predicted_output_tokens - r->generated_tokens);
    const int64_t held_tokens = r->computed_tokens + 1;
    blocks_as_planned = blocks_as_planned && r->kv_blocks == kv_.blocks_for(held_tokens);
    ++slack_count_[static_cast<size_t>(r->kv_blocks * bt - held_tokens) % static_cast<size_t>(bt)];
  }
  if (steps <= 1) return 1;
  // Until the KV blocks the stretch needs exceed the free ones (a reclaim changes state).
  auto blocks_needed = [&](int64_t k) {
    int64_t extra = 0;
    if (blocks_as_planned) {
      for (int64_t slack = 0; slack < bt; ++slack)
        if (k - 1 > slack)
          extra += slack_count_[static_cast<size_t>(slack)] * ((k - 1 - slack + bt - 1) / bt);
    } else {
      for (const ScheduledItem& item : plan_.items)
        extra += std::max<int64_t>(
            0, kv_.blocks_for(item.request->computed_tokens + k) - item.request->kv_blocks);
    }
    return extra;
  };
  steps =
      most_steps_that_fit(steps, [&](int64_t k) { return blocks_needed(k) <= kv_.free_blocks(); });
  stretch_ignores_arrivals_ = waiting_stays;
  // When every request's predicted decode outlasts the stretch (the common case), each step
  // done credits one token per request; otherwise the per-request values are kept, and sorted
  // only if a router asks mid-stretch.
  stretch_left_sorted_.clear();
  stretch_left_prefix_.clear();
  if (least_left < steps)
    for (const ScheduledItem& item : plan_.items)
      stretch_left_sorted_.push_back(std::max<int64_t>(
          0, item.request->predicted_output_tokens - item.request->generated_tokens));
  return steps;
}

int64_t Instance::decode_set_stretch_limit() {
  // Only the decode set runs (no prefill rides along), and nothing waits that could join.
  if (!plan_.items.empty() || plan_.decode_set_members == 0) return 1;
  const bool waiting_stays = !waiting_.empty() && batcher_->admits_none_while_decoding(*this);
  if (!waiting_.empty() && !waiting_stays) return 1;
  int64_t steps = decode_set_.steps_to_next_finish();
  if (steps <= 1) return 1;
  // The first step's blocks were taken at plan; the later steps' must fit in the free ones
  // and those the cache holds. In decode-set mode the cache holds only what preempted requests
  // kept (no prefix cache): a step short of free blocks evicts exactly the missing ones, least
  // recently used first, as finish_decode_set_iteration does for the whole stretch at once.
  const int64_t held_after_first = decode_set_.held_blocks(1);
  const int64_t available = kv_.free_blocks() + prefix_cache_.blocks();
  auto fits = [&](int64_t k) { return decode_set_.held_blocks(k) - held_after_first <= available; };
  steps = most_steps_that_fit(steps, fits);
  stretch_ignores_arrivals_ = waiting_stays;
  return steps;
}

int64_t Instance::plan_stretch(const BatchShape& shape, Time first_step) {
  // Costs that are not affine in context (no KV cache, host-resident KV, interpolated kernel
  // tables) run step by step.
  if (!config_.closed_form_decode || shape.host_kv_tokens > 0 || shape.offload_tokens > 0 ||
      cost_.no_kv_cache || cost_.kernel_db != nullptr)
    return 1;
  const int64_t steps = decode_set_mode_ ? decode_set_stretch_limit() : stretch_limit(shape);
  if (steps <= 1) return 1;
  const int64_t n = shape.decode_sequences;
  // Step j attends over n more tokens per step: d_j = d_0 + j * slope. Verify the cost model
  // is affine here rather than assume it.
  auto price_at = [&](int64_t j) {
    BatchShape s = shape;
    s.decode_context_tokens += static_cast<double>(n * j);
    return price(s).total_s;
  };
  const double d0 = step_cost_.total_s;
  double slope = 0;
  if (decode_set_mode_) {
    // Only the decode set runs, and with fitted kernels the step cost is affine in the
    // attended context with a slope set by the batch size alone: price it once per batch size,
    // checked far out, and reuse it.
    if (decode_slope_.size() <= static_cast<size_t>(n))
      decode_slope_.resize(static_cast<size_t>(n) + 1, -1);
    double& cached = decode_slope_[static_cast<size_t>(n)];
    if (cached < 0) {
      constexpr int64_t kFar = int64_t{1} << 16;
      cached = price_at(1) - d0;
      const double far = price_at(kFar);
      if (cached < 0 || std::fabs(d0 + cached * static_cast<double>(kFar) - far) > 1e-9 * far)
        cached = std::numeric_limits<double>::infinity();  // not affine here: step by step
    }
    if (std::isinf(cached)) return 1;
    slope = cached;
  } else {
    slope = price_at(1) - d0;
    const double last = price_at(steps - 1);
    if (std::fabs(d0 + slope * static_cast<double>(steps - 1) - last) > 1e-9 * last) return 1;
  }
  // Each step rounds to whole nanoseconds as a step-mode iteration does.
  steps_ = StepSeries{first_step.ns, d0, slope, steps};
  // Steps j >= 1 are monotone in j: the first and the last of them are checked against the
  // horizon, those between convert unchecked. Only their sums are taken (the stretch's end,
  // and the inter-token statistics'); an end time within is summed when asked.
  steps_.duration_ns(1);
  steps_.duration_ns(steps - 1);
  cut_steps(steps);
  // The blocks of later steps are taken when the stretch's steps are applied (nothing else
  // allocates from this pool meanwhile), so occupancy and its peak stay those of step mode.
  return steps;
}

}  // namespace servesim

#include "traces/closed_loop.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "models/request.h"
#include "sim/error.h"

namespace servesim {

ClosedLoopWorkload::ClosedLoopWorkload(int64_t concurrency, int64_t requests, Time think_time,
                                       int64_t warmup_requests, LengthSampler lengths,
                                       bool warmup_barrier, int64_t distinct_prompts,
                                       std::string where, double output_spread, uint64_t seed,
                                       PromptOrder prompt_order)
    : concurrency_(concurrency),
      requests_(requests),
      think_time_(think_time),
      warmup_requests_(warmup_requests),
      lengths_(std::move(lengths)),
      warmup_barrier_(warmup_barrier && warmup_requests > 0),
      distinct_prompts_(distinct_prompts),
      output_spread_(output_spread),
      spread_rng_(seed, "output_spread"),
      prompt_order_(prompt_order),
      prompt_rng_(seed, "prompt_order"),
      where_(std::move(where)) {}

void ClosedLoopWorkload::start(Simulator& sim, SubmitFn submit) {
  submit_ = std::move(submit);
  burst(sim);
}

void ClosedLoopWorkload::burst(Simulator& sim) {
  const int64_t phase_end =
      warmup_barrier_ && sent_ < warmup_requests_ ? warmup_requests_ : requests_;
  for (int64_t client = 0; client < concurrency_ && sent_ < phase_end; ++client)
    send_after(sim, client, Time{});
}

uint64_t ClosedLoopWorkload::next_prompt() {
  const auto pool = static_cast<uint64_t>(distinct_prompts_);
  const auto index = static_cast<uint64_t>(sent_);
  switch (prompt_order_) {
    case PromptOrder::kSequential:
      return index % pool;
    case PromptOrder::kRandom:
      return static_cast<uint64_t>(prompt_rng_.uniform_int(0, distinct_prompts_ - 1));
    case PromptOrder::kShuffle:
      break;
  }
  // A pass's order is drawn as it is used: a Fisher-Yates shuffle run forward (the k-th prompt
  // of a pass is drawn uniformly from those the pass has not sent yet), as aiperf reshuffles
  // its dataset each pass. Only the positions the shuffle moved are kept, so a pool far larger
  // than the run costs no memory.
  const uint64_t k = index % pool;
  if (k == 0) pass_moved_.clear();
  const auto at = [this](uint64_t position) {
    const auto it = pass_moved_.find(position);
    return it == pass_moved_.end() ? position : it->second;
  };
  const auto j =
      k + static_cast<uint64_t>(prompt_rng_.uniform_int(0, static_cast<int64_t>(pool - 1 - k)));
  const uint64_t chosen = at(j);
  pass_moved_[j] = at(k);
  return chosen;
}

void ClosedLoopWorkload::on_request_done(Simulator& sim, int64_t client_id) {
  SERVESIM_CHECK(client_id >= 0 && client_id < concurrency_, "client {} of {}", client_id,
                 concurrency_);
  ++done_;
  if (warmup_barrier_ && done_ <= warmup_requests_) {
    // Warm-up: send only warm-up requests; the last one to finish opens the measured phase.
    if (sent_ < warmup_requests_) send_after(sim, client_id, think_time_);
    if (done_ == warmup_requests_) burst(sim);
    return;
  }
  if (sent_ < requests_) send_after(sim, client_id, think_time_);
}

void ClosedLoopWorkload::send_after(Simulator& sim, int64_t client_id, Time delay) {
  if (!(sim.now().to_s() + delay.to_s() <= kMaxInputSeconds))
    throw InputError(
        fmt::format("{}: requests at think_time_s pass {:g} s of simulated time "
                    "(about 31 years)",
                    where_, kMaxInputSeconds));
  // Drawn as the request is counted, so the order follows the sending order.
  const uint64_t prompt = distinct_prompts_ > 0 ? next_prompt() : 0;
  ++sent_;
  sim.schedule_in(delay, Phase::kArrival, [this, &sim, client_id, prompt] {
    const auto draw = lengths_.draw();
    RequestSpec spec;
    spec.arrival = sim.now();
    spec.prompt_tokens = draw.prompt_tokens;
    spec.output_tokens = draw.output_tokens;
    if (output_spread_ > 0) {
      const double factor = 1 + output_spread_ * (2 * spread_rng_.uniform() - 1);
      // Within the bounds every drawn length keeps (models/request.h).
      spec.output_tokens = std::clamp<int64_t>(
          std::llround(static_cast<double>(draw.output_tokens) * factor), 1, kMaxRequestTokens);
    }
    spec.client_id = client_id;
    if (distinct_prompts_ > 0) {
      // Equal prompt ids are equal texts; a pooled prompt keeps its first draw's length only
      // when lengths are fixed, which is how the benchmarks that reuse prompts run.
      spec.prefix_block_tokens = kPromptBlockTokens;
      const int64_t blocks = spec.prompt_tokens / kPromptBlockTokens;
      spec.prefix_block_hashes.reserve(static_cast<size_t>(blocks));
      for (int64_t b = 0; b < blocks; ++b)
        spec.prefix_block_hashes.push_back((prompt + 1) << 40 | static_cast<uint64_t>(b));
    }
    submit_(spec);
  });
}

}  // namespace servesim

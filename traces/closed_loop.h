#pragma once
/// Closed-loop clients, the way a load generator such as a benchmark harness drives a server:
/// `concurrency` clients each send one request at start (in client order) and the next one
/// think_time after the previous finished or was dropped, until `requests` have been sent in
/// all. At most `concurrency` requests are ever outstanding, so the offered load adapts to the
/// system, unlike open-loop arrivals. A request due past kMaxInputSeconds is an InputError
/// starting with `where`.
///
/// With a warm-up barrier (genai-perf / aiperf `--warmup-request-count`), the first
/// `warmup_requests` are a phase of their own: once they are all sent, clients wait until every
/// one of them has finished, and the measured phase then opens with all clients sending at
/// once, so its first burst is inside the measured TTFT.
///
/// With `distinct_prompts` P > 0, requests draw from a pool of P prompts (aiperf's dataset of 100
/// prompts reused) in `prompt_order`, aiperf's `--dataset-sampling-strategy`: kShuffle, its
/// default, goes through the pool in a random order, reshuffled on each pass (aiperf's
/// ShuffleSampler); kSequential sends prompt k mod P; kRandom draws each with replacement. A
/// pooled prompt's blocks carry prefix hashes, so an engine with a prefix cache finds a repeat
/// that is still cached. The order matters once the cache holds fewer than P prompts: in turn,
/// a least-recently-used cache then misses every repeat; shuffled, the repeats that come back
/// within fewer distinct prompts than it holds still hit. 0: every prompt is new (genai-perf's
/// dataset of one entry per request).
///
/// With `output_spread` s > 0, each request's output length is its drawn length times a
/// uniform factor in [1 - s, 1 + s] (rounded, at least 1; its own random stream), so the mean
/// is kept. Its use: with identical lengths every engine here runs in exact lockstep, and
/// clients that queued behind each other once finish in consecutive iterations and queue again
/// every round; measured benchmarks show no such lockstep (see README, "Closed-loop
/// benchmarks"), and a few percent of spread is enough to break it.

#include <cstdint>
#include <string>
#include <unordered_map>

#include "sim/rng.h"
#include "sim/time.h"
#include "traces/length_dist.h"
#include "traces/workload.h"

namespace servesim {

/// How a closed loop's requests pick their prompt from a pool of `distinct_prompts`.
enum class PromptOrder { kShuffle, kSequential, kRandom };

class ClosedLoopWorkload : public Workload {
 public:
  ClosedLoopWorkload(int64_t concurrency, int64_t requests, Time think_time,
                     int64_t warmup_requests, LengthSampler lengths, bool warmup_barrier = false,
                     int64_t distinct_prompts = 0, std::string where = "workload",
                     double output_spread = 0, uint64_t seed = 0,
                     PromptOrder prompt_order = PromptOrder::kShuffle);
  /// Prefix-hash block size of pooled prompts (a multiple of the usual KV block sizes).
  static constexpr int64_t kPromptBlockTokens = 16;
  void start(Simulator& sim, SubmitFn submit) override;
  void on_request_done(Simulator& sim, int64_t client_id) override;
  int64_t warmup_requests() const override { return warmup_requests_; }
  int64_t requests_sent() const { return sent_; }

 private:
  /// Schedules `client_id`'s next request `delay` from now; counts it as sent right away so
  /// that no more than `requests` are ever scheduled.
  void send_after(Simulator& sim, int64_t client_id, Time delay);
  /// Every client sends at once (the opening burst of a phase).
  void burst(Simulator& sim);
  /// The pooled prompt of the next request sent (distinct_prompts_ > 0).
  uint64_t next_prompt();

  int64_t concurrency_;
  int64_t requests_;
  Time think_time_;
  int64_t warmup_requests_;
  LengthSampler lengths_;
  bool warmup_barrier_;
  int64_t distinct_prompts_;
  double output_spread_;
  Rng spread_rng_;
  PromptOrder prompt_order_;
  Rng prompt_rng_;
  /// kShuffle: the positions of this pass's order that the shuffle moved, and what they hold.
  std::unordered_map<uint64_t, uint64_t> pass_moved_;
  SubmitFn submit_;
  int64_t sent_ = 0;
  int64_t done_ = 0;
  std::string where_;
};

}  // namespace servesim

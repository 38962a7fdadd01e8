#pragma once
/// Generated open-loop arrivals: a Poisson process, and multi-turn chat sessions. Both are
/// streams, so a million-request run holds one pending request (Poisson) or one per live
/// session (sessions), never the whole list.

#include <cstdint>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "sim/rng.h"
#include "sim/time.h"
#include "traces/length_dist.h"
#include "traces/workload.h"

namespace servesim {

/// Arrivals with exponential gaps of mean 1 / rate_per_s (RNG stream "arrivals"). The first
/// request arrives at t = 0, as a replayed trace's does, so runs start loaded rather than
/// idling through a random first gap. Stops after `requests` arrivals or at `duration`,
/// whichever comes first (at least one of them must be set). Arrivals past kMaxInputSeconds
/// are an InputError starting with `where` (the workload's file and pointer).
class PoissonStream : public ArrivalStream {
 public:
  PoissonStream(double rate_per_s, std::optional<int64_t> requests, std::optional<Time> duration,
                LengthSampler lengths, uint64_t seed, std::string where = "workload");
  std::optional<RequestSpec> next() override;

 protected:
  /// The gap to the next arrival, in seconds.
  virtual double next_gap_s() { return arrivals_.exponential(rate_per_s_); }
  double rate_per_s_;
  Rng arrivals_;

 private:
  std::optional<int64_t> requests_;
  std::optional<Time> duration_;
  LengthSampler lengths_;
  Time next_arrival_{};
  bool next_beyond_horizon_ = false;
  int64_t emitted_ = 0;
  std::string where_;
};

/// Bursty arrivals: gamma-distributed gaps of mean 1 / rate_per_s and coefficient of variation
/// `cv` (standard deviation over mean), as Vidur's and DistServe's generators offer. cv 1 is a
/// Poisson process in distribution (drawn another way, so not the same draws as PoissonStream);
/// above 1 arrivals come in bursts separated by lulls, below 1 they are more regular. Shape
/// 1 / cv^2, scale cv^2 / rate_per_s; otherwise as PoissonStream.
class GammaStream : public PoissonStream {
 public:
  GammaStream(double rate_per_s, double cv, std::optional<int64_t> requests,
              std::optional<Time> duration, LengthSampler lengths, uint64_t seed,
              std::string where = "workload")
      : PoissonStream(rate_per_s, requests, duration, std::move(lengths), seed, std::move(where)),
        shape_(1.0 / (cv * cv)) {}

 private:
  double next_gap_s() override { return arrivals_.gamma(shape_, 1.0 / (shape_ * rate_per_s_)); }
  double shape_;
};

/// Multi-turn sessions, open loop. Sessions start as a Poisson process of rate_per_s (stream
/// "arrivals"; the first at t = 0), each with `turns` turns. Turn k + 1 arrives think_time
/// after turn k arrived: the gap stands for the model's answer plus the user's reading and
/// typing, and does not wait for the simulated answer, which keeps the stream independent of
/// the system under test (a closed-loop variant would not be a stream).
///
/// Each turn's prompt carries the whole conversation: prompt(k+1) = prompt(k) + output(k) +
/// new input(k+1), the new input and output drawn from the length distributions. Prefix
/// hashes cover the full 16-token blocks of the prompt, id = session << 32 | block index: a
/// turn's ids are a prefix of the next turn's, and no two sessions share an id. The partial
/// last block has no id, because the next turn appends to it and so changes its content.
/// A turn past kMaxInputSeconds, or a prompt past kMaxRequestTokens, is an InputError starting
/// with `where`.
class SessionStream : public ArrivalStream {
 public:
  static constexpr int64_t kBlockTokens = 16;
  SessionStream(int64_t sessions, int64_t turns, double rate_per_s, Time think_time,
                LengthSampler lengths, uint64_t seed, std::string where = "workload");
  std::optional<RequestSpec> next() override;

 private:
  struct Turn {
    Time arrival;
    uint64_t seq;  // insertion order: ties at equal time go first come, first served
    int64_t session;
    int64_t turn;
    int64_t context_tokens;  // prompt and output of all previous turns
    bool operator>(const Turn& o) const {
      return arrival > o.arrival || (arrival == o.arrival && seq > o.seq);
    }
  };
  void push(Turn turn);

  int64_t sessions_;
  int64_t turns_;
  double rate_per_s_;
  Time think_time_;
  LengthSampler lengths_;
  Rng arrivals_;
  int64_t started_ = 0;
  Time next_start_{};
  bool next_start_beyond_horizon_ = false;
  uint64_t seq_ = 0;
  std::string where_;
  std::priority_queue<Turn, std::vector<Turn>, std::greater<Turn>> pending_;
};

}  // namespace servesim

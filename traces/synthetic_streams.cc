#include "traces/synthetic_streams.h"

#include <fmt/format.h>

#include <utility>

#include "sim/error.h"

namespace servesim {
namespace {

/// `t` plus `gap_s`, unless that passes kMaxInputSeconds (then nullopt): gaps drawn at very low
/// rates would otherwise overflow simulated time.
std::optional<Time> later_within_horizon(Time t, double gap_s) {
  if (!(t.to_s() + gap_s <= kMaxInputSeconds)) return std::nullopt;
  return t + Time::from_s(gap_s);
}

[[noreturn]] void fail_horizon(const std::string& where, std::string_view what) {
  throw InputError(fmt::format("{}: {} pass {:g} s of simulated time (about 31 years)", where, what,
                               kMaxInputSeconds));
}

}  // namespace

PoissonStream::PoissonStream(double rate_per_s, std::optional<int64_t> requests,
                             std::optional<Time> duration, LengthSampler lengths, uint64_t seed,
                             std::string where)
    : rate_per_s_(rate_per_s),
      arrivals_(seed, "arrivals"),
      requests_(requests),
      duration_(duration),
      lengths_(std::move(lengths)),
      where_(std::move(where)) {}

std::optional<RequestSpec> PoissonStream::next() {
  if (requests_ && emitted_ >= *requests_) return std::nullopt;
  if (duration_ && (next_beyond_horizon_ || next_arrival_ >= *duration_)) return std::nullopt;
  if (next_beyond_horizon_) fail_horizon(where_, "arrivals at rate_per_s");
  RequestSpec spec;
  spec.arrival = next_arrival_;
  const auto draw = lengths_.draw();
  spec.prompt_tokens = draw.prompt_tokens;
  spec.output_tokens = draw.output_tokens;
  const auto next = later_within_horizon(next_arrival_, next_gap_s());
  next_beyond_horizon_ = !next;
  if (next) next_arrival_ = *next;
  ++emitted_;
  return spec;
}

SessionStream::SessionStream(int64_t sessions, int64_t turns, double rate_per_s, Time think_time,
                             LengthSampler lengths, uint64_t seed, std::string where)
    : sessions_(sessions),
      turns_(turns),
      rate_per_s_(rate_per_s),
      think_time_(think_time),
      lengths_(std::move(lengths)),
      arrivals_(seed, "arrivals"),
      where_(std::move(where)) {}

void SessionStream::push(Turn turn) {
  turn.seq = seq_++;
  pending_.push(turn);
}

std::optional<RequestSpec> SessionStream::next() {
  // Start the next session once no live session has an earlier turn waiting.
  if (started_ < sessions_ &&
      (pending_.empty() || next_start_beyond_horizon_ || next_start_ <= pending_.top().arrival)) {
    if (next_start_beyond_horizon_) fail_horizon(where_, "session starts at rate_per_s");
    push(Turn{next_start_, 0, started_, 0, 0});
    ++started_;
    const auto next = later_within_horizon(next_start_, arrivals_.exponential(rate_per_s_));
    next_start_beyond_horizon_ = !next;
    if (next) next_start_ = *next;
  }
  if (pending_.empty()) return std::nullopt;
  const Turn turn = pending_.top();
  pending_.pop();

  const auto draw = lengths_.draw();
  RequestSpec spec;
  spec.arrival = turn.arrival;
  spec.prompt_tokens = turn.context_tokens + draw.prompt_tokens;
  if (spec.prompt_tokens > kMaxRequestTokens)
    throw InputError(fmt::format(
        "{}: a session's prompt reaches {} tokens at turn {}, more than the {} a request may "
        "have; use fewer turns or shorter lengths",
        where_, spec.prompt_tokens, turn.turn + 1, kMaxRequestTokens));
  spec.output_tokens = draw.output_tokens;
  spec.session_id = turn.session;
  spec.prefix_block_tokens = kBlockTokens;
  const int64_t blocks = spec.prompt_tokens / kBlockTokens;
  spec.prefix_block_hashes.reserve(static_cast<size_t>(blocks));
  for (int64_t b = 0; b < blocks; ++b)
    spec.prefix_block_hashes.push_back(static_cast<uint64_t>(turn.session) << 32 |
                                       static_cast<uint64_t>(b));
  if (turn.turn + 1 < turns_) {
    if (!(turn.arrival.to_s() + think_time_.to_s() <= kMaxInputSeconds))
      fail_horizon(where_, "turns at think_time_s");
    push(Turn{turn.arrival + think_time_, 0, turn.session, turn.turn + 1,
              spec.prompt_tokens + spec.output_tokens});
  }
  return spec;
}

}  // namespace servesim

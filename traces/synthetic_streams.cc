#include "traces/synthetic_streams.h"

#include <utility>

namespace servesim {

PoissonStream::PoissonStream(double rate_per_s, std::optional<int64_t> requests,
                             std::optional<Time> duration, LengthSampler lengths, uint64_t seed)
    : rate_per_s_(rate_per_s),
      requests_(requests),
      duration_(duration),
      lengths_(std::move(lengths)),
      arrivals_(seed, "arrivals") {}

std::optional<RequestSpec> PoissonStream::next() {
  if (requests_ && emitted_ >= *requests_) return std::nullopt;
  if (duration_ && next_arrival_ >= *duration_) return std::nullopt;
  RequestSpec spec;
  spec.arrival = next_arrival_;
  const auto draw = lengths_.draw();
  spec.prompt_tokens = draw.prompt_tokens;
  spec.output_tokens = draw.output_tokens;
  next_arrival_ += Time::from_s(arrivals_.exponential(rate_per_s_));
  ++emitted_;
  return spec;
}

SessionStream::SessionStream(int64_t sessions, int64_t turns, double rate_per_s, Time think_time,
                             LengthSampler lengths, uint64_t seed)
    : sessions_(sessions),
      turns_(turns),
      rate_per_s_(rate_per_s),
      think_time_(think_time),
      lengths_(std::move(lengths)),
      arrivals_(seed, "arrivals") {}

void SessionStream::push(Turn turn) {
  turn.seq = seq_++;
  pending_.push(turn);
}

std::optional<RequestSpec> SessionStream::next() {
  // Start the next session once no live session has an earlier turn waiting.
  if (started_ < sessions_ && (pending_.empty() || next_start_ <= pending_.top().arrival)) {
    push(Turn{next_start_, 0, started_, 0, 0});
    ++started_;
    next_start_ += Time::from_s(arrivals_.exponential(rate_per_s_));
  }
  if (pending_.empty()) return std::nullopt;
  const Turn turn = pending_.top();
  pending_.pop();

  const auto draw = lengths_.draw();
  RequestSpec spec;
  spec.arrival = turn.arrival;
  spec.prompt_tokens = turn.context_tokens + draw.prompt_tokens;
  spec.output_tokens = draw.output_tokens;
  spec.session_id = turn.session;
  spec.prefix_block_tokens = kBlockTokens;
  const int64_t blocks = spec.prompt_tokens / kBlockTokens;
  spec.prefix_block_hashes.reserve(static_cast<size_t>(blocks));
  for (int64_t b = 0; b < blocks; ++b)
    spec.prefix_block_hashes.push_back(static_cast<uint64_t>(turn.session) << 32 |
                                       static_cast<uint64_t>(b));
  if (turn.turn + 1 < turns_)
    push(Turn{turn.arrival + think_time_, 0, turn.session, turn.turn + 1,
              spec.prompt_tokens + spec.output_tokens});
  return spec;
}

}  // namespace servesim

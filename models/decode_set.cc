#include "models/decode_set.h"

#include <algorithm>
#include <limits>

#include "sim/error.h"

namespace servesim {

DecodeSet::DecodeSet(int64_t block_tokens)
    : bt_(block_tokens), residue_at_least_(static_cast<size_t>(block_tokens) + 1, 0) {}

void DecodeSet::count_residue(int64_t residue, int64_t delta) {
  for (int64_t s = 0; s <= residue; ++s) residue_at_least_[static_cast<size_t>(s)] += delta;
}

void DecodeSet::join(Request& r, int64_t steps_left, bool recorded) {
  SERVESIM_CHECK(!is_member(r) && r.in_decode && steps_left > 0,
                 "request {} cannot join the decode set", r.id);
  SERVESIM_CHECK(r.kv_blocks == (r.computed_tokens + bt_ - 1) / bt_ &&
                     r.shared_prefix_blocks == 0 && r.host_blocks == 0,
                 "request {} joins the decode set holding {} KV blocks for {} tokens", r.id,
                 r.kv_blocks, r.computed_tokens);
  r.decode_membership = next_membership_++;
  r.decode_joined_at = clock_;
  r.decode_computed_offset = r.computed_tokens - clock_;
  r.decode_generated_offset = r.generated_tokens - clock_;
  r.decode_recorded = recorded;
  ++size_;
  recorded_ += recorded ? 1 : 0;
  const int64_t offset = r.decode_computed_offset;
  const int64_t quotient = floor_div(offset);
  block_quotient_sum_ += quotient;
  count_residue(offset - quotient * bt_, 1);
  computed_offset_sum_ += offset;
  computed_offset_sq_sum_ += offset * offset;
  r.decode_predicted_end =
      clock_ + std::max<int64_t>(0, r.predicted_output_tokens - r.generated_tokens);
  if (r.decode_predicted_end > clock_) {
    predicted_end_.push(r.decode_predicted_end);
    ++predicted_active_;
    predicted_end_sum_ += r.decode_predicted_end;
  }
  r.decode_finish_at = clock_ + steps_left;
  finish_.push({r.decode_finish_at, r.decode_membership, &r});
}

void DecodeSet::remove_aggregates(Request& r) {
  --size_;
  recorded_ -= r.decode_recorded ? 1 : 0;
  const int64_t offset = r.decode_computed_offset;
  const int64_t quotient = floor_div(offset);
  block_quotient_sum_ -= quotient;
  count_residue(offset - quotient * bt_, -1);
  computed_offset_sum_ -= offset;
  computed_offset_sq_sum_ -= offset * offset;
  if (r.decode_predicted_end > clock_) {
    predicted_end_deleted_.push(r.decode_predicted_end);
    --predicted_active_;
    predicted_end_sum_ -= r.decode_predicted_end;
    drop_deleted(predicted_end_, predicted_end_deleted_);
  }
  // Bring the request's own fields to the clock. Its blocks are those of its computed tokens:
  // members leave between steps, when no growth for the next step has been taken.
  r.computed_tokens = computed(r);
  r.generated_tokens = generated(r);
  r.kv_blocks = (r.computed_tokens + bt_ - 1) / bt_;
  if (clock_ > r.decode_joined_at) r.last_token = last_step_end_;
  r.decode_membership = 0;
}

void DecodeSet::leave(Request& r) {
  SERVESIM_CHECK(is_member(r), "request {} is not in the decode set", r.id);
  // Its finish entry stays in the heap, marked deleted.
  finish_deleted_.push({r.decode_finish_at, r.decode_membership, &r});
  remove_aggregates(r);
  drop_deleted(finish_, finish_deleted_);
}

void DecodeSet::advance(int64_t steps, Time last_step_end) {
  clock_ += steps;
  last_step_end_ = last_step_end;
  while (!predicted_end_.empty() && predicted_end_.top() <= clock_) {
    if (!predicted_end_deleted_.empty() && predicted_end_deleted_.top() == predicted_end_.top()) {
      predicted_end_deleted_.pop();
    } else {
      --predicted_active_;
      predicted_end_sum_ -= predicted_end_.top();
    }
    predicted_end_.pop();
  }
  drop_deleted(predicted_end_, predicted_end_deleted_);
}

void DecodeSet::take_finished(std::vector<Request*>& out) {
  while (!finish_.empty() && finish_.top().at <= clock_) {
    Request* r = finish_.top().request;
    SERVESIM_CHECK(finish_.top().at == clock_, "request {} overran its last decode step", r->id);
    finish_.pop();
    remove_aggregates(*r);
    out.push_back(r);
    drop_deleted(finish_, finish_deleted_);
  }
}

int64_t DecodeSet::steps_to_next_finish() const {
  return finish_.empty() ? std::numeric_limits<int64_t>::max() : finish_.top().at - clock_;
}

int64_t DecodeSet::held_blocks(int64_t ahead) const {
  // With x = clock + ahead = bt * a + b (0 <= b < bt): ceil((s + x) / bt) = a + c, where c is 0
  // for s + b = 0, 2 for s + b > bt, else 1.
  const int64_t x = clock_ + ahead;
  const int64_t a = x / bt_, b = x % bt_;
  const auto at_least = [&](int64_t s) { return residue_at_least_[static_cast<size_t>(s)]; };
  const int64_t zero = b == 0 ? at_least(0) - at_least(1) : 0;
  const int64_t two = b == 0 ? 0 : at_least(bt_ - b + 1);
  return block_quotient_sum_ + size_ * a + (size_ - zero) + two;
}

int64_t DecodeSet::context_tokens_sq_sum(int64_t ahead) const {
  const int64_t x = clock_ + ahead + 1;
  return computed_offset_sq_sum_ + 2 * x * computed_offset_sum_ + size_ * x * x;
}

int64_t DecodeSet::predicted_decode_left(int64_t ahead) const {
  const int64_t at = clock_ + ahead;
  if (predicted_end_.empty() || predicted_end_.top() > at)
    return predicted_end_sum_ - predicted_active_ * at;
  // Some predictions run out within `ahead` steps (only mid-stretch, with predictions shorter
  // than the true output): sum over the heaps' contents, the deleted ones subtracted.
  auto sum_over = [at](const MinHeap<int64_t>& heap) {
    int64_t total = 0;
    for (int64_t end : heap.items) total += std::max<int64_t>(0, end - at);
    return total;
  };
  return sum_over(predicted_end_) - sum_over(predicted_end_deleted_);
}

}  // namespace servesim

#include "models/decode_set.h"

#include <algorithm>
#include <limits>

#include "sim/error.h"

namespace servesim {

namespace {

/// Moves the entry at `i` up to its place in a heap of `entries` ordered by `at`; `place(j, e)`
/// puts entry e at j (and may note where it went).
template <typename Place>
void sift_up(std::vector<ClockEntry>& entries, size_t i, Place place) {
  const ClockEntry e = entries[i];
  while (i > 0) {
    const size_t parent = (i - 1) / 2;
    if (entries[parent].at <= e.at) break;
    place(i, entries[parent]);
    i = parent;
  }
  place(i, e);
}

/// Moves the entry at `i` down to its place, as sift_up does up.
template <typename Place>
void sift_down(std::vector<ClockEntry>& entries, size_t i, Place place) {
  const ClockEntry e = entries[i];
  const size_t n = entries.size();
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && entries[child + 1].at < entries[child].at) ++child;
    if (e.at <= entries[child].at) break;
    place(i, entries[child]);
    i = child;
  }
  place(i, e);
}

}  // namespace

void MemberHeap::push(int64_t at, Request* r) {
  entries_.push_back({at, r});
  sift_up(entries_, entries_.size() - 1, [this](size_t i, Entry e) { place(i, e); });
}

void MemberHeap::remove(Request* r) {
  const auto i = static_cast<size_t>(r->*slot_);
  r->*slot_ = -1;
  const Entry last = entries_.back();
  entries_.pop_back();
  if (i == entries_.size()) return;
  const auto put = [this](size_t j, Entry e) { place(j, e); };
  put(i, last);
  sift_down(entries_, i, put);
  sift_up(entries_, i, put);
}

void FinishHeap::push(int64_t at, Request* r) {
  entries_.push_back({at, r});
  sift_up(entries_, entries_.size() - 1, [this](size_t i, Entry e) { entries_[i] = e; });
}

void FinishHeap::pop() {
  entries_.front() = entries_.back();
  entries_.pop_back();
  if (!entries_.empty()) sift_down(entries_, 0, [this](size_t i, Entry e) { entries_[i] = e; });
}

void FinishHeap::drop_stale(int64_t members) {
  if (static_cast<int64_t>(entries_.size()) > members + members / 4 + 32) {
    std::erase_if(entries_, [&](const Entry& e) { return stale(e); });
    for (size_t i = entries_.size() / 2; i-- > 0;)
      sift_down(entries_, i, [this](size_t j, Entry e) { entries_[j] = e; });
  }
  while (!entries_.empty() && stale(entries_.front())) pop();
}

DecodeSet::DecodeSet(int64_t block_tokens, int owner)
    : bt_(block_tokens),
      residue_at_least_(static_cast<size_t>(block_tokens) + 1, 0),
      finish_(owner) {}

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
  // A prediction that outlasts the request's true output runs until it leaves; only the
  // shorter ones need the heap that expires them as the clock passes their end.
  r.decode_predicted_active = r.decode_predicted_end > clock_;
  if (r.decode_predicted_active) {
    ++predicted_active_;
    predicted_end_sum_ += r.decode_predicted_end;
    if (r.decode_predicted_end < clock_ + steps_left)
      predicted_end_.push(r.decode_predicted_end, &r);
  }
  r.decode_finish_at = clock_ + steps_left;
  finish_.push(r.decode_finish_at, &r);
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
  if (r.decode_predicted_active) {
    --predicted_active_;
    predicted_end_sum_ -= r.decode_predicted_end;
    if (predicted_end_.contains(r)) predicted_end_.remove(&r);
  }
  // Its entry in the finish heap goes stale; those at the top are dropped.
  r.decode_finish_at = -1;
  finish_.drop_stale(size_);
  // Bring the request's own fields to the clock. Its blocks are those of its computed tokens:
  // members leave between steps, when no growth for the next step has been taken.
  r.computed_tokens = computed(r);
  r.generated_tokens = generated(r);
  r.kv_blocks = (r.computed_tokens + bt_ - 1) / bt_;
  if (clock_ > r.decode_joined_at) r.last_token = last_step_end_;
}

void DecodeSet::leave(Request& r) {
  SERVESIM_CHECK(is_member(r), "request {} is not in the decode set", r.id);
  remove_aggregates(r);
}

void DecodeSet::advance(int64_t steps, Time last_step_end) {
  clock_ += steps;
  last_step_end_ = last_step_end;
  while (!predicted_end_.empty() && predicted_end_.top().at <= clock_) {
    Request* r = predicted_end_.top().request;
    r->decode_predicted_active = false;
    --predicted_active_;
    predicted_end_sum_ -= r->decode_predicted_end;
    predicted_end_.remove(r);
  }
}

void DecodeSet::take_finished(std::vector<Request*>& out) {
  while (!finish_.empty() && finish_.top().at <= clock_) {
    Request* r = finish_.top().request;
    SERVESIM_CHECK(finish_.top().at == clock_, "request {} overran its last decode step", r->id);
    finish_.pop();
    remove_aggregates(*r);
    out.push_back(r);
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
  // Members outside the heap are predicted to decode at least until they finish, which no
  // stretch passes, so only heap entries can have run out by `at`.
  const int64_t all = predicted_end_sum_ - predicted_active_ * at;
  if (predicted_end_.empty() || predicted_end_.top().at > at) return all;
  // Some predictions run out within `ahead` steps (mid-stretch, predictions shorter than the
  // true output): those count zero, not a negative amount.
  int64_t correction = 0;
  for (const MemberHeap::Entry& e : predicted_end_.entries())
    correction += std::max<int64_t>(0, at - e.at);
  return all + correction;
}

}  // namespace servesim

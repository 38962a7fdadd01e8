#pragma once
/// The decoding requests of one replica, kept in aggregate so that a change of the batch costs
/// O(log batch) instead of O(batch).
///
/// Under continuous batching every decoding request gains one token per iteration, so between
/// its joining and its leaving a member's counters are fixed offsets from the replica's decode
/// clock (the number of decode steps taken). The set keeps those offsets, and sums over them:
/// the KV blocks the members hold (grouped by offset modulo the block size, since a member
/// needs a new block every block_tokens steps), the contexts the next step attends over, the
/// predicted decode left (for routers), and the clock at which each member finishes (a heap).
/// A member's own fields (computed and generated tokens, KV blocks, last token time) are
/// brought up to date when it leaves.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "models/request.h"
#include "sim/time.h"

namespace servesim {

/// A member of a decode set in a heap ordered by a decode clock value.
struct ClockEntry {
  int64_t at;
  Request* request;
};

/// Members ordered by a decode clock value, each knowing its place in the heap (a field of
/// Request), so that a member leaving early is removed in O(log n).
class MemberHeap {
 public:
  using Slot = int32_t Request::*;
  using Entry = ClockEntry;
  explicit MemberHeap(Slot slot) : slot_(slot) {}
  bool empty() const { return entries_.empty(); }
  const Entry& top() const { return entries_.front(); }
  const std::vector<Entry>& entries() const { return entries_; }
  void push(int64_t at, Request* r);
  void remove(Request* r);
  bool contains(const Request& r) const { return r.*slot_ >= 0; }

 private:
  void place(size_t i, Entry e) {
    entries_[i] = e;
    e.request->*slot_ = static_cast<int32_t>(i);
  }

  Slot slot_;
  std::vector<Entry> entries_;
};

/// Members ordered by the decode clock of their last step. A member that leaves before it
/// finishes (preemption, a fault) is not taken out: its entry stays until it comes to the top,
/// where it is recognised as stale, since the request is no longer a member of this replica's set
/// finishing then, and dropped. Sifting so never writes into the requests (an indexed heap
/// writes each moved request's slot, a cache miss per level), and the top is always a member's.
/// Stale entries are swept out all at once when they pass a quarter of the members. An entry
/// may outlive its request (finished and its slot reset by the gateway, Request{}): it is stale
/// unless the slot's new request is a member here finishing at the same step, and then it
/// stands for that member's own entry (the first of the two popped finishes it; the other is
/// then stale).
class FinishHeap {
 public:
  using Entry = ClockEntry;
  explicit FinishHeap(int owner) : owner_(owner) {}
  bool empty() const { return entries_.empty(); }
  const Entry& top() const { return entries_.front(); }
  size_t size() const { return entries_.size(); }
  /// Adds member `r`, whose decode_finish_at is `at`.
  void push(int64_t at, Request* r);
  /// Removes the top, then any stale entries that come to the top.
  void pop();
  /// Drops stale entries from the top, and sweeps them all out once there are more of them than
  /// a quarter of `members` (the members left) and a few.
  void drop_stale(int64_t members);

 private:
  bool stale(const Entry& e) const {
    return e.request->instance != owner_ || e.request->decode_finish_at != e.at;
  }

  int owner_;  ///< the replica (Request::instance) whose set this is
  std::vector<Entry> entries_;
};

class DecodeSet {
 public:
  /// The decode set of replica `owner` (its requests' Request::instance).
  explicit DecodeSet(int64_t block_tokens, int owner = -1);

  int64_t size() const { return size_; }
  /// Members whose tokens the observer records (warm-up requests are not).
  uint64_t recorded() const { return recorded_; }

  /// `r` has emitted a token and decodes one per step from now on, until it has taken
  /// `steps_left` more steps. It must hold exactly the KV blocks of its computed tokens.
  void join(Request& r, int64_t steps_left, bool recorded);
  /// Brings `r`'s counters up to the clock and removes it.
  void leave(Request& r);
  static bool is_member(const Request& r) { return r.decode_finish_at >= 0; }

  /// A member's computed and generated tokens `ahead` steps after the clock.
  int64_t computed(const Request& r, int64_t ahead = 0) const {
    return r.decode_computed_offset + clock_ + ahead;
  }
  int64_t generated(const Request& r, int64_t ahead = 0) const {
    return r.decode_generated_offset + clock_ + ahead;
  }

  /// Every member took `steps` steps, the last of them ending at `last_step_end`.
  void advance(int64_t steps, Time last_step_end);
  /// Removes the members whose last step is done (in no particular order) into `out`.
  void take_finished(std::vector<Request*>& out);
  /// Steps until the next member finishes (max when empty).
  int64_t steps_to_next_finish() const;
  /// The member that finishes next (nullptr when empty).
  const Request* next_to_finish() const {
    return finish_.empty() ? nullptr : finish_.top().request;
  }

  /// KV blocks the members hold once their computed tokens have grown by `ahead`.
  int64_t held_blocks(int64_t ahead) const;
  /// Blocks the members need to grow their computed tokens by one more: those whose last
  /// block is full.
  int64_t growth_blocks() const {
    return residue_at_least_[static_cast<size_t>((bt_ - clock_ % bt_) % bt_)] -
           residue_at_least_[static_cast<size_t>((bt_ - clock_ % bt_) % bt_ + 1)];
  }
  /// Sum over members of the context the step `ahead` steps from now attends over (computed
  /// tokens + 1), and the sum of its squares.
  int64_t context_tokens_sum(int64_t ahead) const {
    return computed_offset_sum_ + size_ * (clock_ + ahead + 1);
  }
  int64_t context_tokens_sq_sum(int64_t ahead) const;
  /// Sum over members of their predicted decode left, `ahead` steps from now; `ahead` at most
  /// steps_to_next_finish() (within the stretch in flight).
  int64_t predicted_decode_left(int64_t ahead) const;

 private:
  int64_t floor_div(int64_t a) const { return a >= 0 ? a / bt_ : -((-a + bt_ - 1) / bt_); }
  void remove_aggregates(Request& r);

  int64_t bt_;
  int64_t clock_ = 0;
  Time last_step_end_;
  int64_t size_ = 0;
  uint64_t recorded_ = 0;
  // Member r holds ceil((offset_r + clock + ahead) / bt) blocks; with offset_r = bt * q_r + s_r
  // (0 <= s_r < bt) that is q_r + ceil((s_r + clock + ahead) / bt).
  void count_residue(int64_t residue, int64_t delta);
  int64_t block_quotient_sum_ = 0;
  std::vector<int64_t> residue_at_least_;  ///< [s]: members with s_r >= s; bt + 1 entries
  int64_t computed_offset_sum_ = 0;
  int64_t computed_offset_sq_sum_ = 0;
  // Predicted decode left: the members whose predicted end (clock at which it reaches zero) is
  // still ahead, their count and the sum of their ends; those predicted to stop before they
  // finish are also in a heap that expires them.
  int64_t predicted_active_ = 0;
  int64_t predicted_end_sum_ = 0;
  MemberHeap predicted_end_{&Request::decode_predicted_slot};
  FinishHeap finish_;
};

}  // namespace servesim

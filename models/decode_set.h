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
#include <functional>
#include <vector>

#include "models/request.h"
#include "sim/time.h"

namespace servesim {

class DecodeSet {
 public:
  explicit DecodeSet(int64_t block_tokens);

  int64_t clock() const { return clock_; }
  int64_t size() const { return size_; }
  /// Members whose tokens the observer records (warm-up requests are not).
  uint64_t recorded() const { return recorded_; }

  /// `r` has emitted a token and decodes one per step from now on, until it has taken
  /// `steps_left` more steps. It must hold exactly the KV blocks of its computed tokens.
  void join(Request& r, int64_t steps_left, bool recorded);
  /// Brings `r`'s counters up to the clock and removes it.
  void leave(Request& r);
  static bool is_member(const Request& r) { return r.decode_membership != 0; }

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
  /// Sum over members of their predicted decode left, `ahead` steps from now.
  int64_t predicted_decode_left(int64_t ahead) const;

 private:
  int64_t floor_div(int64_t a) const { return a >= 0 ? a / bt_ : -((-a + bt_ - 1) / bt_); }
  /// A min-heap on a vector (the vector stays readable for whole-set sums).
  template <class T>
  struct MinHeap {
    std::vector<T> items;
    bool empty() const { return items.empty(); }
    const T& top() const { return items.front(); }
    void push(T value) {
      items.push_back(value);
      std::push_heap(items.begin(), items.end(), std::greater<T>());
    }
    void pop() {
      std::pop_heap(items.begin(), items.end(), std::greater<T>());
      items.pop_back();
    }
  };
  /// Lazy deletion: `deleted` is a sub-multiset of `heap`. Dropping the tops they share keeps
  /// the heap's top a live entry.
  template <class T>
  static void drop_deleted(MinHeap<T>& heap, MinHeap<T>& deleted) {
    while (!deleted.empty() && !heap.empty() && deleted.top() == heap.top()) {
      heap.pop();
      deleted.pop();
    }
  }
  void remove_aggregates(Request& r);

  int64_t bt_;
  int64_t clock_ = 0;
  Time last_step_end_;
  int64_t size_ = 0;
  uint64_t recorded_ = 0;
  uint64_t next_membership_ = 1;
  // Member r holds ceil((offset_r + clock + ahead) / bt) blocks; with offset_r = bt * q_r + s_r
  // (0 <= s_r < bt) that is q_r + ceil((s_r + clock + ahead) / bt).
  void count_residue(int64_t residue, int64_t delta);
  int64_t block_quotient_sum_ = 0;
  std::vector<int64_t> residue_at_least_;  ///< [s]: members with s_r >= s; bt + 1 entries
  int64_t computed_offset_sum_ = 0;
  int64_t computed_offset_sq_sum_ = 0;
  // Predicted decode left: members whose predicted end (clock at which it reaches zero) is
  // still ahead, as a count, a sum and a min-heap of ends.
  MinHeap<int64_t> predicted_end_, predicted_end_deleted_;
  int64_t predicted_active_ = 0;
  int64_t predicted_end_sum_ = 0;
  // Finish clock and membership id of each member; the request pointer rides along.
  struct Finish {
    int64_t at;
    uint64_t membership;
    Request* request;
    bool operator==(const Finish& o) const { return at == o.at && membership == o.membership; }
    bool operator>(const Finish& o) const {
      return at != o.at ? at > o.at : membership > o.membership;
    }
  };
  MinHeap<Finish> finish_, finish_deleted_;
};

}  // namespace servesim

#pragma once
/// The running requests of one replica, in admission order, at O(1) a change.
///
/// Batchers add at the back and preempt from the back; requests finish from anywhere. A request
/// carries its place in the list (Request::running_index), so it is found without a search, and
/// leaving from the middle leaves a hole rather than moving the requests behind it. Holes are
/// closed all at once when they outnumber the requests (amortised O(1) a leave: only the
/// requests behind the first hole move, and each is told its new place), or when a batcher that
/// reads the list by position asks (compact()). The back is never a hole, so back(), size() and
/// iteration need no compaction.

#include <cstddef>
#include <iterator>
#include <vector>

#include "models/request.h"
#include "sim/error.h"

namespace servesim {

class RunningList {
  /// A running request, or nullptr for a hole.
  using Entry = Request*;

 public:
  /// Forward iteration over the requests, in admission order, skipping holes.
  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Request*;
    using difference_type = std::ptrdiff_t;
    using pointer = Request* const*;
    using reference = Request* const&;
    Iterator() = default;
    Iterator(const Entry* at, const Entry* end) : at_(at), end_(end) { skip_holes(); }
    reference operator*() const { return *at_; }
    Iterator& operator++() {
      ++at_;
      skip_holes();
      return *this;
    }
    Iterator operator++(int) {
      Iterator before = *this;
      ++*this;
      return before;
    }
    friend bool operator==(const Iterator& a, const Iterator& b) { return a.at_ == b.at_; }

   private:
    void skip_holes() {
      while (at_ != end_ && *at_ == nullptr) ++at_;
    }
    const Entry* at_ = nullptr;
    const Entry* end_ = nullptr;
  };

  size_t size() const { return live_; }
  /// Holes not yet closed: at most size() after any removal.
  size_t holes() const { return entries_.size() - live_; }
  bool empty() const { return live_ == 0; }
  Request* back() const { return entries_.back(); }
  Iterator begin() const { return {entries_.data(), entries_.data() + entries_.size()}; }
  Iterator end() const {
    const Entry* last = entries_.data() + entries_.size();
    return {last, last};
  }

  /// The request at `index` in admission order; only without holes (see compact()).
  Request* operator[](size_t index) const {
    SERVESIM_CHECK(live_ == entries_.size(), "running list read by position with {} holes",
                   entries_.size() - live_);
    return entries_[index];
  }

  /// The request at `pos` (from position(); nullptr for a hole).
  Request* entry(size_t pos) const { return entries_[pos]; }

  /// Appends `r`, noting its place in it.
  void push_back(Request* r) {
    r->running_index = entries_.size();
    entries_.push_back(r);
    ++live_;
  }

  /// Where `r` is (holes counted); fails loudly when it is not running here.
  size_t position(const Request& r) const {
    const size_t pos = r.running_index;
    SERVESIM_CHECK(pos < entries_.size() && entries_[pos] == &r, "request {} is not running", r.id);
    return pos;
  }

  /// Removes the request at `pos` (from position()), leaving a hole: positions stay valid
  /// until settle().
  void remove_at(size_t pos) {
    entries_[pos] = nullptr;
    --live_;
  }
  /// Drops the holes at the back, and closes all holes once they outnumber the requests.
  void settle() {
    while (!entries_.empty() && entries_.back() == nullptr) entries_.pop_back();
    if (entries_.size() - live_ > live_) compact();
  }
  void remove(const Request& r) {
    remove_at(position(r));
    settle();
  }

  /// Closes the holes: positions are then the requests' places in admission order.
  void compact() {
    if (live_ == entries_.size()) return;
    size_t kept = 0;
    while (entries_[kept] != nullptr) ++kept;  // those before the first hole stay put
    for (size_t i = kept + 1; i < entries_.size(); ++i) {
      if (entries_[i] == nullptr) continue;
      entries_[i]->running_index = kept;
      entries_[kept++] = entries_[i];
    }
    entries_.resize(kept);
  }

  void clear() {
    entries_.clear();
    live_ = 0;
  }

 private:
  std::vector<Entry> entries_;
  size_t live_ = 0;
};

}  // namespace servesim

#pragma once
/// A binary-heap event queue with a total order (time, phase, seq) and lazy cancellation.
///
/// The heap holds small POD entries; callbacks live in a slot array reused through a free
/// list, so push/pop move 24 bytes and never a std::function. Cancelling clears the slot;
/// the entry is skipped when it reaches the top.

#include <cstdint>
#include <functional>
#include <vector>

#include "sim/time.h"

namespace servesim {

/// Ties at equal time are broken by phase first: arrivals are seen before an iteration that
/// ends at the same instant is scheduled, and samples observe the state after both.
enum class Phase : uint8_t {
  kFault = 0,  ///< a fault takes effect before anything else at its instant
  kArrival = 1,
  kTransfer = 2,
  kIterationDone = 3,
  kSchedule = 4,
  kSample = 5
};

struct EventId {
  uint32_t slot = UINT32_MAX;
  uint32_t generation = 0;
  bool valid() const { return slot != UINT32_MAX; }
};

class EventQueue {
 public:
  using Callback = std::function<void()>;

  /// The queue stamps the sequence number; callers never do.
  EventId push(Time at, Phase phase, Callback callback);
  /// Returns false when the event already ran or was cancelled.
  bool cancel(EventId id);
  bool empty();
  /// Time of the next live event; call only when !empty().
  Time top_time();
  /// Pops the next live event and returns its time and callback.
  Time pop(Callback& out);
  /// Events pushed and neither run nor cancelled.
  size_t live_events() const { return live_; }

 private:
  struct Entry {
    int64_t key_ns;
    uint64_t order;  // phase in the top 8 bits, sequence number below: one compare
    uint32_t slot;
  };
  struct Slot {
    Callback callback;
    uint32_t generation = 0;
    bool live = false;
  };
  static bool before(const Entry& a, const Entry& b) {
    return a.key_ns < b.key_ns || (a.key_ns == b.key_ns && a.order < b.order);
  }
  void sift_up(size_t i);
  void sift_down(size_t i);
  void pop_top();
  /// Pops cancelled events off the top; inline, as the top is mostly live (run() asks empty()
  /// then pops, and both look).
  void drop_dead() {
    if (!heap_.empty() && !slots_[heap_.front().slot].live) drop_dead_entries();
  }
  void drop_dead_entries();

  std::vector<Entry> heap_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  uint64_t next_seq_ = 0;
  size_t live_ = 0;
};

}  // namespace servesim

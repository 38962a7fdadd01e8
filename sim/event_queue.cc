#include "sim/event_queue.h"

#include <utility>

#include "sim/error.h"

namespace servesim {

EventId EventQueue::push(Time at, Phase phase, Callback callback) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[slot];
  s.callback = std::move(callback);
  s.live = true;
  ++live_;
  const uint64_t order = (static_cast<uint64_t>(phase) << 56) | next_seq_++;
  heap_.push_back(Entry{at.ns, order, slot});
  sift_up(heap_.size() - 1);
  return EventId{slot, s.generation};
}

bool EventQueue::cancel(EventId id) {
  if (!id.valid() || id.slot >= slots_.size()) return false;
  Slot& s = slots_[id.slot];
  if (!s.live || s.generation != id.generation) return false;
  s.live = false;
  s.callback = nullptr;
  --live_;
  return true;
}

void EventQueue::drop_dead_entries() {
  while (!heap_.empty() && !slots_[heap_.front().slot].live) {
    const uint32_t slot = heap_.front().slot;
    pop_top();
    ++slots_[slot].generation;
    free_slots_.push_back(slot);
  }
}

bool EventQueue::empty() {
  drop_dead();
  return heap_.empty();
}

Time EventQueue::top_time() {
  drop_dead();
  return Time{heap_.front().key_ns};
}

Time EventQueue::pop(Callback& out) {
  drop_dead();
  SERVESIM_CHECK(!heap_.empty(), "pop from an empty event queue");
  const Entry top = heap_.front();
  pop_top();
  Slot& s = slots_[top.slot];
  out = std::move(s.callback);
  s.callback = nullptr;
  s.live = false;
  --live_;
  ++s.generation;
  free_slots_.push_back(top.slot);
  return Time{top.key_ns};
}

void EventQueue::pop_top() {
  heap_.front() = heap_.back();
  heap_.pop_back();
  if (!heap_.empty()) sift_down(0);
}

void EventQueue::sift_up(size_t i) {
  const Entry e = heap_[i];
  while (i > 0) {
    const size_t parent = (i - 1) / 2;
    if (!before(e, heap_[parent])) break;
    heap_[i] = heap_[parent];
    i = parent;
  }
  heap_[i] = e;
}

void EventQueue::sift_down(size_t i) {
  const size_t n = heap_.size();
  const Entry e = heap_[i];
  while (true) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && before(heap_[child + 1], heap_[child])) ++child;
    if (!before(heap_[child], e)) break;
    heap_[i] = heap_[child];
    i = child;
  }
  heap_[i] = e;
}

}  // namespace servesim

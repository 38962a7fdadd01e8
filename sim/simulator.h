#pragma once
/// The simulation kernel: a clock and an event queue. An object, never a global, so sweeps
/// can run many simulations on parallel threads.

#include <cstdint>

#include "sim/event_queue.h"
#include "sim/time.h"

namespace servesim {

class Simulator {
 public:
  Time now() const { return now_; }
  EventId schedule_at(Time at, Phase phase, EventQueue::Callback callback);
  EventId schedule_in(Time delay, Phase phase, EventQueue::Callback callback) {
    return schedule_at(now_ + delay, phase, std::move(callback));
  }
  bool cancel(EventId id) { return queue_.cancel(id); }
  /// Runs events until the queue is empty or stop() is called.
  void run();
  void stop() { stopped_ = true; }
  uint64_t events_processed() const { return events_processed_; }
  size_t pending_events() const { return queue_.live_events(); }

 private:
  EventQueue queue_;
  Time now_{};
  uint64_t events_processed_ = 0;
  bool stopped_ = false;
};

}  // namespace servesim

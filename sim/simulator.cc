#include "sim/simulator.h"

#include "sim/error.h"

namespace servesim {

EventId Simulator::schedule_at(Time at, Phase phase, EventQueue::Callback callback) {
  SERVESIM_CHECK(at >= now_, "event scheduled in the past: at {} < now {}", at, now_);
  return queue_.push(at, phase, std::move(callback));
}

void Simulator::run() {
  stopped_ = false;
  EventQueue::Callback callback;
  while (!stopped_ && !queue_.empty()) {
    now_ = queue_.pop(callback);
    ++events_processed_;
    callback();
  }
}

}  // namespace servesim

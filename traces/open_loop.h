#pragma once
/// Open-loop replay of an ArrivalStream: exactly one arrival event is pending at any time.
/// When it fires, the request is submitted and the next one is pulled from the stream, so a
/// trace of any length costs one RequestSpec and one queue entry.

#include <memory>
#include <optional>

#include "traces/workload.h"

namespace servesim {

class OpenLoopWorkload : public Workload {
 public:
  explicit OpenLoopWorkload(std::unique_ptr<ArrivalStream> stream);
  /// Arrival times are absolute simulated times; start() is called at t = 0.
  void start(Simulator& sim, SubmitFn submit) override;

 private:
  void schedule_next(Simulator& sim);

  std::unique_ptr<ArrivalStream> stream_;
  SubmitFn submit_;
  RequestSpec pending_;
};

}  // namespace servesim

#pragma once
/// Closed-loop clients, the way a load generator such as a benchmark harness drives a server:
/// `concurrency` clients each send one request at start (in client order) and the next one
/// think_time after the previous finished or was dropped, until `requests` have been sent in
/// all. At most `concurrency` requests are ever outstanding, so the offered load adapts to the
/// system, unlike open-loop arrivals. A request due past kMaxInputSeconds is an InputError
/// starting with `where`.

#include <cstdint>
#include <string>

#include "sim/time.h"
#include "traces/length_dist.h"
#include "traces/workload.h"

namespace servesim {

class ClosedLoopWorkload : public Workload {
 public:
  ClosedLoopWorkload(int64_t concurrency, int64_t requests, Time think_time,
                     int64_t warmup_requests, LengthSampler lengths,
                     std::string where = "workload");
  void start(Simulator& sim, SubmitFn submit) override;
  void on_request_done(Simulator& sim, int64_t client_id) override;
  int64_t warmup_requests() const override { return warmup_requests_; }
  int64_t requests_sent() const { return sent_; }

 private:
  /// Schedules `client_id`'s next request `delay` from now; counts it as sent right away so
  /// that no more than `requests` are ever scheduled.
  void send_after(Simulator& sim, int64_t client_id, Time delay);

  int64_t concurrency_;
  int64_t requests_;
  Time think_time_;
  int64_t warmup_requests_;
  LengthSampler lengths_;
  SubmitFn submit_;
  int64_t sent_ = 0;
  std::string where_;
};

}  // namespace servesim

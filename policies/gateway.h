#pragma once
/// The cluster's front end: every request's way in and out. It takes arrivals from the
/// workload, has the output-length predictor and the router choose a replica, hands the request
/// over, and when the replica reports it finished or dropped, lets the metrics see it before
/// its slot is reused. It owns the requests in flight and checks that none is lost.
///
/// Replicas report to the gateway (it is their InstanceObserver); what they report about
/// tokens and iterations passes through to the metrics unchanged.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "models/instance.h"
#include "models/request.h"
#include "policies/predictor.h"
#include "policies/router.h"
#include "sim/chunked_array.h"

namespace servesim {

class SizeClassRouter;

/// Moves a request's KV between replicas (disaggregated serving), e.g. as flows on the
/// cluster's links (policies/kv_transfer.h).
class KvMover {
 public:
  virtual ~KvMover() = default;
  /// Starts moving `r`'s KV (its computed tokens) from replica `from` to replica `to`;
  /// `arrived(bytes)` runs when the last byte is there.
  virtual void move(const Request& r, int from, int to,
                    std::function<void(double bytes)> arrived) = 0;
};

class Gateway final : public InstanceObserver {
 public:
  /// `metrics` sees every report of the replicas, and a request's finish or drop before the
  /// request is released.
  Gateway(Router& router, OutputPredictor& predictor, InstanceObserver& metrics);

  /// A replica, in scenario order: `view` is what the router may read of it (may be null for a
  /// router that reads nothing), `sink` takes the requests routed to it. Arrivals go to the
  /// mixed and prefill replicas; the decode router chooses among the decode replicas.
  void add_instance(Instance* view, RequestSink* sink, InstanceRole role = InstanceRole::kMixed);
  /// Disaggregated serving: who picks the decode replica of a request whose prefill ended, and
  /// who moves its KV there. Both outlive the gateway.
  void set_disaggregation(Router* decode_router, KvMover* mover, Simulator* sim) {
    decode_router_ = decode_router;
    kv_mover_ = mover;
    sim_ = sim;
  }
  /// Each arrival reaches the router `latency` after it is sent (the serving frontend); the
  /// request is in flight meanwhile, on no replica.
  void set_frontend_latency(Time latency, Simulator* sim) {
    frontend_latency_ = latency;
    sim_ = sim;
  }
  /// Called with the request's client id (-1 for open-loop sources) once it is released, so a
  /// closed-loop client can send its next request.
  void set_on_released(std::function<void(int64_t client_id)> on_released) {
    on_released_ = std::move(on_released);
  }

  /// A request arrives now. With no replica up it is dropped at once.
  void submit(const RequestSpec& spec);

  /// What a replica's failure did to the requests it held.
  struct FailureOutcome {
    uint64_t rerouted = 0;    ///< handed to a replica still up
    uint64_t dropped = 0;     ///< dropped by policy, or because no replica was up
    int64_t lost_tokens = 0;  ///< KV tokens lost, which a recompute must compute again
  };
  /// Replica `index` fails now (Instance::fail). Its requests are routed again among the
  /// replicas still up and recomputed there from their prompt and the tokens already emitted
  /// (as a recompute preemption does), or, with `reroute` false, dropped.
  FailureOutcome fail_instance(int index, bool reroute);

  // InstanceObserver.
  void on_first_token(const Request& r) override { metrics_.on_first_token(r); }
  void on_token(const Request& r, Time gap) override { metrics_.on_token(r, gap); }
  void on_decode_stretch(const std::vector<ScheduledItem>& items,
                         std::span<const int64_t> step_end_ns) override {
    metrics_.on_decode_stretch(items, step_end_ns);
  }
  bool records_tokens_of(const Request& r) const override { return metrics_.records_tokens_of(r); }
  void on_decode_steps(uint64_t requests, const StepSeries& steps,
                       const LaterStepSums& later) override {
    metrics_.on_decode_steps(requests, steps, later);
  }
  void on_iteration(const Instance& instance, Time start, Time duration,
                    const IterationCost& cost) override {
    metrics_.on_iteration(instance, start, duration, cost);
  }
  void on_step_resized(const Instance& instance) override { metrics_.on_step_resized(instance); }
  void on_finish(Request& r) override;
  void on_drop(Request& r, std::string_view reason) override;
  void on_prefill_handoff(Request& r) override;
  /// With migration on (set_migration), a replica's preempted decode moves to the other
  /// replica with the most free KV that can hold its context, if any.
  bool on_migrate(Request& r) override;
  void set_migration(KvMover* mover, Simulator* sim) {
    migration_mover_ = mover;
    sim_ = sim;
  }

  uint64_t arrived() const { return arrived_; }
  uint64_t completed() const { return completed_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t in_flight() const { return in_flight_; }
  /// Arrival time of the first request, Time::max() before any.
  Time first_arrival() const { return first_arrival_; }

  /// Every request that arrived finished or was dropped, and none is still held. Throws
  /// InvariantError otherwise.
  void check_conservation() const;

 private:
  void release(Request& r);
  /// Asks the router and hands `r` to the replica it chose; drops it (and returns false) when
  /// none is up.
  bool route(Request* r);
  /// Has the decode router choose among the decode replicas: the replica's index, or -1.
  int route_decode(const Request& r);

  Router& router_;
  /// The router when it routes by size class: the gateway then marks misrouted requests.
  const SizeClassRouter* size_class_router_;
  OutputPredictor& predictor_;
  InstanceObserver& metrics_;
  std::vector<Instance*> views_;
  std::vector<RequestSink*> sinks_;
  /// The replicas arrivals go to (mixed and prefill) and the decode replicas: what their
  /// routers see, and each one's index in views_.
  std::vector<Instance*> entry_views_, decode_views_;
  std::vector<int> entry_index_, decode_index_;
  Router* decode_router_ = nullptr;
  KvMover* kv_mover_ = nullptr;
  KvMover* migration_mover_ = nullptr;
  FairTieBreak migration_ties_;
  Simulator* sim_ = nullptr;
  Time frontend_latency_{};
  std::function<void(int64_t)> on_released_;

  /// Requests in flight live in a pool whose slots are reused once a request is released:
  /// memory follows the peak number in flight, and nothing is looked up by id.
  ChunkedArray<Request> request_pool_;
  std::vector<Request*> free_requests_;
  uint64_t next_id_ = 0;
  uint64_t arrived_ = 0, completed_ = 0, dropped_ = 0, in_flight_ = 0;
  Time first_arrival_ = Time::max();
};

}  // namespace servesim

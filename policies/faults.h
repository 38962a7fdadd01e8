#pragma once
/// Faults a scenario injects (`/faults`), and the injector that makes them happen on time:
///   - instance_failure: a replica (or the replica holding a given GPU) fails at a time; the
///     gateway re-routes and recomputes its requests, or drops them; it may recover, empty,
///     after a delay;
///   - straggler: a replica runs `slowdown` times slower over an interval;
///   - link_degradation: a link keeps `bandwidth_factor` of its bandwidth over an interval, and
///     the transfers priced on it (TP all-reduce, PP sends, KV offload over PCIe) slow down;
///   - link_failure: a link goes down at a time; every replica whose TP ring, PP chain or host
///     PCIe link crosses it fails as in instance_failure (the cluster graph has one path between
///     two devices, so nothing can route around it), and they come back with the link.
/// Transfers are priced per iteration on their paths (models/cost_model.h), so a degraded link
/// re-prices the iterations that start while it is degraded.

#include <cstdint>
#include <string>
#include <vector>

#include "models/cluster.h"
#include "models/cost_model.h"
#include "models/instance.h"
#include "policies/gateway.h"
#include "sim/simulator.h"

namespace servesim {

enum class FaultKind : uint8_t { kInstanceFailure, kStraggler, kLinkDegradation, kLinkFailure };
std::string_view fault_kind_name(FaultKind kind);

struct FaultSpec {
  FaultKind kind = FaultKind::kInstanceFailure;
  std::string target;  ///< the instance or link name, as results name it
  int instance = -1;   ///< failure and straggler: index in scenario order
  int link = -1;       ///< link degradation and failure: Cluster::links() index
  Time start;          ///< when the failure happens or the interval begins
  /// When the failed replica is back, or the interval ends; Time::max() for never.
  Time end = Time::max();
  double factor = 1.0;  ///< straggler: slowdown (> 1 slower); link: bandwidth factor in (0, 1]
  bool reroute = true;  ///< failures: re-route the requests (else drop them)
};

/// One thing that happened, for the result.
struct FaultEvent {
  Time time;
  FaultKind kind;
  std::string target;
  std::string action;  ///< "fail", "recover", "begin", "end"
  uint64_t rerouted = 0;
  uint64_t dropped = 0;
  int64_t lost_tokens = 0;
};

class FaultInjector {
 public:
  /// `instances` in scenario order; `base_costs[i]` is replica i's cost-model input without
  /// faults.
  FaultInjector(Simulator& sim, Gateway& gateway, std::vector<Instance*> instances,
                const Cluster& cluster, std::vector<CostModelConfig> base_costs,
                std::vector<FaultSpec> faults);

  /// Schedules every fault's start and end.
  void start();

  const std::vector<FaultEvent>& events() const { return events_; }
  uint64_t rerouted() const { return rerouted_; }
  uint64_t dropped() const { return dropped_; }
  int64_t lost_tokens() const { return lost_tokens_; }

 private:
  void begin(size_t k);
  void end(size_t k);
  /// Sets every replica's pace from the stragglers and degraded links active now (factors
  /// multiplied in scenario order, so an interval's end restores the pace exactly); replicas
  /// whose pace does not change are left alone.
  void apply_pace();
  /// `path` with each link's bandwidth scaled by its factor now.
  Path degraded(const Path& path) const;
  /// Fault k takes replica i down (the first cause fails it) or lets it up again (the last
  /// cause gone recovers it).
  void take_down(size_t i, const FaultSpec& f, FaultEvent& e);
  void let_up(size_t i);
  /// The replicas a failure takes down (none for a straggler or a degraded link).
  std::vector<size_t> struck(const FaultSpec& f) const;
  /// The replicas whose TP ring, PP chain or host link crosses `link`.
  std::vector<size_t> replicas_crossing(int link) const;

  Simulator& sim_;
  Gateway& gateway_;
  std::vector<Instance*> instances_;
  const Cluster& cluster_;
  std::vector<CostModelConfig> base_costs_;
  std::vector<FaultSpec> faults_;
  std::vector<bool> active_;         ///< per fault: its interval has begun and not ended
  std::vector<double> link_factor_;  ///< per link, product of active degradations
  std::vector<int> down_causes_;     ///< per replica, failures holding it down now
  /// Per replica, the links its TP ring hops, PP hops and GPUs' host links cross.
  std::vector<std::vector<int>> links_used_;
  std::vector<FaultEvent> events_;
  uint64_t rerouted_ = 0, dropped_ = 0;
  int64_t lost_tokens_ = 0;
};

}  // namespace servesim

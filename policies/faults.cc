#include "policies/faults.h"

#include <algorithm>
#include <limits>

namespace servesim {

std::string_view fault_kind_name(FaultKind kind) {
  switch (kind) {
    case FaultKind::kInstanceFailure:
      return "instance_failure";
    case FaultKind::kStraggler:
      return "straggler";
    case FaultKind::kLinkDegradation:
      return "link_degradation";
  }
  return "?";
}

FaultInjector::FaultInjector(Simulator& sim, Gateway& gateway, std::vector<Instance*> instances,
                             const Cluster& cluster, std::vector<CostModelConfig> base_costs,
                             std::vector<FaultSpec> faults)
    : sim_(sim),
      gateway_(gateway),
      instances_(std::move(instances)),
      cluster_(cluster),
      base_costs_(std::move(base_costs)),
      faults_(std::move(faults)),
      active_(faults_.size(), false),
      link_factor_(cluster.links().size(), 1.0) {}

void FaultInjector::start() {
  for (size_t k = 0; k < faults_.size(); ++k) {
    sim_.schedule_at(faults_[k].start, Phase::kFault, [this, k] { begin(k); });
    if (faults_[k].end != Time::max())
      sim_.schedule_at(faults_[k].end, Phase::kFault, [this, k] { end(k); });
  }
}

void FaultInjector::begin(size_t k) {
  const FaultSpec& f = faults_[k];
  active_[k] = true;
  FaultEvent e{sim_.now(), f.kind, f.target, "begin"};
  switch (f.kind) {
    case FaultKind::kInstanceFailure: {
      e.action = "fail";
      if (!instances_[f.instance]->available()) break;  // already down: nothing more to lose
      const Gateway::FailureOutcome o = gateway_.fail_instance(f.instance, f.reroute);
      e.rerouted = o.rerouted;
      e.dropped = o.dropped;
      e.lost_tokens = o.lost_tokens;
      rerouted_ += o.rerouted;
      dropped_ += o.dropped;
      lost_tokens_ += o.lost_tokens;
      break;
    }
    case FaultKind::kStraggler:
    case FaultKind::kLinkDegradation:
      apply_pace();
      break;
  }
  events_.push_back(std::move(e));
}

void FaultInjector::end(size_t k) {
  const FaultSpec& f = faults_[k];
  active_[k] = false;
  FaultEvent e{sim_.now(), f.kind, f.target, "end"};
  switch (f.kind) {
    case FaultKind::kInstanceFailure:
      e.action = "recover";
      instances_[f.instance]->recover();
      break;
    case FaultKind::kStraggler:
    case FaultKind::kLinkDegradation:
      apply_pace();
      break;
  }
  events_.push_back(std::move(e));
}

Path FaultInjector::degraded(const Path& path) const {
  if (path.link_ids.empty()) return path;
  Path p = path;
  p.bandwidth_bytes_per_s = std::numeric_limits<double>::infinity();
  for (int l : p.link_ids)
    p.bandwidth_bytes_per_s = std::min(
        p.bandwidth_bytes_per_s, cluster_.links()[l].spec.bandwidth_bytes_per_s * link_factor_[l]);
  return p;
}

void FaultInjector::apply_pace() {
  std::vector<double> slowdown(instances_.size(), 1.0);
  std::fill(link_factor_.begin(), link_factor_.end(), 1.0);
  for (size_t k = 0; k < faults_.size(); ++k) {
    if (!active_[k]) continue;
    if (faults_[k].kind == FaultKind::kStraggler)
      slowdown[faults_[k].instance] *= faults_[k].factor;
    if (faults_[k].kind == FaultKind::kLinkDegradation)
      link_factor_[faults_[k].link] *= faults_[k].factor;
  }
  for (size_t i = 0; i < instances_.size(); ++i) {
    const CostModelConfig& base = base_costs_[i];
    CostModelConfig cost = base;
    cost.tp_path = degraded(base.tp_path);
    cost.pp_path = degraded(base.pp_path);
    cost.host_path = degraded(base.host_path);
    // The fitted all-reduce table describes a healthy NVLink: a degraded ring is priced on its
    // path's bandwidth instead.
    if (cost.tp_path.bandwidth_bytes_per_s != base.tp_path.bandwidth_bytes_per_s)
      cost.tp_on_nvlink = false;
    Instance& inst = *instances_[i];
    const CostModelConfig& now = inst.cost_config();
    if (slowdown[i] == inst.slowdown() &&
        cost.tp_path.bandwidth_bytes_per_s == now.tp_path.bandwidth_bytes_per_s &&
        cost.pp_path.bandwidth_bytes_per_s == now.pp_path.bandwidth_bytes_per_s &&
        cost.host_path.bandwidth_bytes_per_s == now.host_path.bandwidth_bytes_per_s &&
        cost.tp_on_nvlink == now.tp_on_nvlink)
      continue;
    inst.set_pace(cost, slowdown[i]);
  }
}

}  // namespace servesim

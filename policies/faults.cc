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
    case FaultKind::kLinkFailure:
      return "link_failure";
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
      link_factor_(cluster.links().size(), 1.0),
      down_causes_(instances_.size(), 0),
      links_used_(instances_.size()) {
  for (size_t i = 0; i < instances_.size(); ++i) {
    const InstanceConfig& c = instances_[i]->config();
    std::vector<int>& used = links_used_[i];
    auto add = [&](const Path& p) {
      used.insert(used.end(), p.link_ids.begin(), p.link_ids.end());
    };
    auto gpu = [&](int stage, int rank) {
      return c.gpus[static_cast<size_t>(stage * c.tp + rank)];
    };
    for (int s = 0; s < c.pp; ++s)
      for (int t = 0; t < c.tp; ++t) {
        if (c.tp > 1) add(cluster_.gpu_path(gpu(s, t), gpu(s, (t + 1) % c.tp)));
        if (s + 1 < c.pp) add(cluster_.gpu_path(gpu(s, t), gpu(s + 1, t)));
        add(cluster_.host_path(gpu(s, t)));
      }
    std::sort(used.begin(), used.end());
    used.erase(std::unique(used.begin(), used.end()), used.end());
  }
}

void FaultInjector::start() {
  for (size_t k = 0; k < faults_.size(); ++k) {
    sim_.schedule_at(faults_[k].start, Phase::kFault, [this, k] { begin(k); });
    if (faults_[k].end != Time::max())
      sim_.schedule_at(faults_[k].end, Phase::kFault, [this, k] { end(k); });
  }
}

std::vector<size_t> FaultInjector::struck(const FaultSpec& f) const {
  if (f.kind == FaultKind::kInstanceFailure) return {static_cast<size_t>(f.instance)};
  if (f.kind == FaultKind::kLinkFailure) return replicas_crossing(f.link);
  return {};
}

void FaultInjector::begin(size_t k) {
  const FaultSpec& f = faults_[k];
  active_[k] = true;
  const bool failure = f.kind == FaultKind::kInstanceFailure || f.kind == FaultKind::kLinkFailure;
  FaultEvent e{sim_.now(), f.kind, f.target, failure ? "fail" : "begin"};
  for (size_t i : struck(f)) take_down(i, f, e);
  if (!failure) apply_pace();
  events_.push_back(std::move(e));
}

void FaultInjector::end(size_t k) {
  const FaultSpec& f = faults_[k];
  active_[k] = false;
  const bool failure = f.kind == FaultKind::kInstanceFailure || f.kind == FaultKind::kLinkFailure;
  FaultEvent e{sim_.now(), f.kind, f.target, failure ? "recover" : "end"};
  for (size_t i : struck(f)) let_up(i);
  if (!failure) apply_pace();
  events_.push_back(std::move(e));
}

void FaultInjector::take_down(size_t i, const FaultSpec& f, FaultEvent& e) {
  if (down_causes_[i]++ > 0) return;  // already down: nothing more to lose
  const Gateway::FailureOutcome o = gateway_.fail_instance(static_cast<int>(i), f.reroute);
  e.rerouted += o.rerouted;
  e.dropped += o.dropped;
  e.lost_tokens += o.lost_tokens;
  rerouted_ += o.rerouted;
  dropped_ += o.dropped;
  lost_tokens_ += o.lost_tokens;
}

void FaultInjector::let_up(size_t i) {
  if (--down_causes_[i] == 0) instances_[i]->recover();
}

std::vector<size_t> FaultInjector::replicas_crossing(int link) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < links_used_.size(); ++i)
    if (std::binary_search(links_used_[i].begin(), links_used_[i].end(), link)) out.push_back(i);
  return out;
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
    // EP all-to-all paths; of the inter-node one, a GPU's own links and the shared network.
    cost.ep_intra_path = degraded(base.ep_intra_path);
    cost.ep_inter_path = degraded(base.ep_inter_path);
    if (!base.ep_inter_path.link_ids.empty()) {
      cost.ep_inter_own_bytes_per_s = cost.ep_inter_shared_bytes_per_s = 0;
      for (int l : base.ep_inter_path.link_ids) {
        const double bw = cluster_.links()[l].spec.bandwidth_bytes_per_s * link_factor_[l];
        double& slowest = cluster_.links()[l].kind == LinkKind::kNetwork
                              ? cost.ep_inter_shared_bytes_per_s
                              : cost.ep_inter_own_bytes_per_s;
        if (slowest == 0 || bw < slowest) slowest = bw;
      }
    }
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
        cost.ep_intra_path.bandwidth_bytes_per_s == now.ep_intra_path.bandwidth_bytes_per_s &&
        cost.ep_inter_own_bytes_per_s == now.ep_inter_own_bytes_per_s &&
        cost.ep_inter_shared_bytes_per_s == now.ep_inter_shared_bytes_per_s &&
        cost.tp_on_nvlink == now.tp_on_nvlink)
      continue;
    inst.set_pace(cost, slowdown[i]);
  }
}

}  // namespace servesim

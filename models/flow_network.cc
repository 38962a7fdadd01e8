#include "models/flow_network.h"

#include <algorithm>
#include <cmath>

#include "sim/error.h"

namespace servesim {

FlowNetwork::FlowNetwork(Simulator& sim, std::vector<LinkSpec> links)
    : sim_(sim),
      links_(std::move(links)),
      stats_(links_.size()),
      flows_on_link_(links_.size()),
      used_bytes_per_s_(links_.size(), 0.0),
      last_advance_(sim.now()) {
  for (const LinkSpec& l : links_)
    SERVESIM_CHECK(l.bandwidth_bytes_per_s > 0 && l.latency_s >= 0, "link {} B/s, {} s",
                   l.bandwidth_bytes_per_s, l.latency_s);
}

FlowNetwork::Flow* FlowNetwork::find(uint64_t id) {
  for (Flow& f : active_)
    if (f.id == id) return &f;
  return nullptr;
}

const FlowNetwork::Flow* FlowNetwork::find(uint64_t id) const {
  for (const Flow& f : active_)
    if (f.id == id) return &f;
  return nullptr;
}

double FlowNetwork::rate_of(uint64_t flow) const {
  const Flow* f = find(flow);
  return f ? f->rate_bytes_per_s : 0.0;
}

uint64_t FlowNetwork::start(const std::vector<int>& path, double bytes, Done done) {
  SERVESIM_CHECK(bytes >= 0 && std::isfinite(bytes), "a flow of {} bytes", bytes);
  advance_to_now();
  const uint64_t id = next_id_++;
  bytes_sent_ += bytes;
  double latency_s = 0;
  for (int l : path) {
    SERVESIM_CHECK(l >= 0 && l < static_cast<int>(links_.size()), "no link {}", l);
    latency_s += links_[static_cast<size_t>(l)].latency_s;
  }
  if (path.empty() || bytes == 0) {  // nothing shares a link: only the latency remains
    sim_.schedule_in(Time::from_s(latency_s), Phase::kTransfer,
                     [this, bytes, done = std::move(done)] {
                       bytes_received_ += bytes;
                       done();
                     });
    return id;
  }
  Flow f;
  f.id = id;
  f.path = path;
  f.bytes = f.remaining_bytes = bytes;
  f.latency_s = latency_s;
  f.done = std::move(done);
  for (int l : path) {
    auto& on = flows_on_link_[static_cast<size_t>(l)];
    on.push_back(id);
    LinkStats& s = stats_[static_cast<size_t>(l)];
    s.bytes += bytes;
    s.peak_flows = std::max(s.peak_flows, static_cast<int>(on.size()));
  }
  active_.push_back(std::move(f));
  reshare(path);
  return id;
}

void FlowNetwork::set_bandwidth(int link, double bandwidth_bytes_per_s) {
  SERVESIM_CHECK(bandwidth_bytes_per_s > 0, "link {} set to {} B/s", link, bandwidth_bytes_per_s);
  advance_to_now();
  links_[static_cast<size_t>(link)].bandwidth_bytes_per_s = bandwidth_bytes_per_s;
  reshare({link});
}

void FlowNetwork::settle() {
  advance_to_now();
}

void FlowNetwork::advance_to_now() {
  const double dt_s = (sim_.now() - last_advance_).to_s();
  last_advance_ = sim_.now();
  if (dt_s <= 0) return;
  for (Flow& f : active_)
    f.remaining_bytes = std::max(0.0, f.remaining_bytes - f.rate_bytes_per_s * dt_s);
  for (size_t l = 0; l < links_.size(); ++l) {
    const size_t n = flows_on_link_[l].size();
    if (n == 0) continue;
    LinkStats& s = stats_[l];
    s.busy_s += dt_s;
    s.flow_seconds += static_cast<double>(n) * dt_s;
    s.transfer_seconds += used_bytes_per_s_[l] / links_[l].bandwidth_bytes_per_s * dt_s;
  }
}

void FlowNetwork::reshare(std::vector<int> seed_links) {
  // The flows touched: those reachable from the seed links through shared links. Flows elsewhere
  // keep their rates, so their completion events stay where they are.
  std::vector<char> link_seen(links_.size(), 0);
  std::vector<int> links;
  std::vector<Flow*> flows;
  for (size_t i = 0; i < seed_links.size(); ++i) {
    const int l = seed_links[i];
    if (link_seen[static_cast<size_t>(l)]) continue;
    link_seen[static_cast<size_t>(l)] = 1;
    links.push_back(l);
    for (uint64_t id : flows_on_link_[static_cast<size_t>(l)]) {
      Flow* f = find(id);
      if (std::find(flows.begin(), flows.end(), f) != flows.end()) continue;
      flows.push_back(f);
      for (int m : f->path)
        if (!link_seen[static_cast<size_t>(m)]) seed_links.push_back(m);
    }
  }
  std::sort(links.begin(), links.end());  // ties go to the lowest link index: deterministic
  // Progressive filling: the link offering the smallest fair share fixes the rate of its
  // unfixed flows; their bandwidth is taken from every link they cross; repeat.
  std::vector<double> left(links_.size(), 0.0);
  std::vector<int> unfixed(links_.size(), 0);
  for (int l : links) {
    left[static_cast<size_t>(l)] = links_[static_cast<size_t>(l)].bandwidth_bytes_per_s;
    unfixed[static_cast<size_t>(l)] =
        static_cast<int>(flows_on_link_[static_cast<size_t>(l)].size());
  }
  std::vector<char> fixed(flows.size(), 0);
  size_t fixed_count = 0;
  while (fixed_count < flows.size()) {
    int bottleneck = -1;
    double share = 0;
    for (int l : links) {
      const auto li = static_cast<size_t>(l);
      if (unfixed[li] == 0) continue;
      const double s = left[li] / unfixed[li];
      if (bottleneck < 0 || s < share) {
        bottleneck = l;
        share = s;
      }
    }
    SERVESIM_CHECK(bottleneck >= 0, "{} flows left without a link", flows.size() - fixed_count);
    for (size_t i = 0; i < flows.size(); ++i) {
      if (fixed[i]) continue;
      Flow& f = *flows[i];
      if (std::find(f.path.begin(), f.path.end(), bottleneck) == f.path.end()) continue;
      fixed[i] = 1;
      ++fixed_count;
      f.rate_bytes_per_s = share;
      for (int m : f.path) {
        const auto mi = static_cast<size_t>(m);
        left[mi] = std::max(0.0, left[mi] - share);
        --unfixed[mi];
      }
    }
  }
  for (int l : links) {
    double used = 0;
    for (uint64_t id : flows_on_link_[static_cast<size_t>(l)]) used += find(id)->rate_bytes_per_s;
    used_bytes_per_s_[static_cast<size_t>(l)] = used;
  }
  for (Flow* f : flows) {
    if (f->finish_event.valid()) sim_.cancel(f->finish_event);
    const uint64_t id = f->id;
    f->finish_event = sim_.schedule_in(Time::from_s(f->remaining_bytes / f->rate_bytes_per_s),
                                       Phase::kTransfer, [this, id] { finish(id); });
  }
}

void FlowNetwork::finish(uint64_t id) {
  advance_to_now();
  const auto it =
      std::find_if(active_.begin(), active_.end(), [id](const Flow& f) { return f.id == id; });
  SERVESIM_CHECK(it != active_.end(), "flow {} finished twice", id);
  Flow f = std::move(*it);
  active_.erase(it);
  for (int l : f.path) {
    auto& on = flows_on_link_[static_cast<size_t>(l)];
    on.erase(std::find(on.begin(), on.end(), id));
  }
  // The last byte left now (up to the nanosecond rounding of the completion time).
  sim_.schedule_in(Time::from_s(f.latency_s), Phase::kTransfer,
                   [this, bytes = f.bytes, done = std::move(f.done)] {
                     bytes_received_ += bytes;
                     done();
                   });
  reshare(f.path);
}

void FlowNetwork::check_conservation() const {
  SERVESIM_CHECK(active_.empty(), "{} flows still in progress at the end", active_.size());
  SERVESIM_CHECK(std::fabs(bytes_sent_ - bytes_received_) <= 1e-9 * std::max(1.0, bytes_sent_),
                 "network bytes not conserved: {} sent, {} received", bytes_sent_, bytes_received_);
}

}  // namespace servesim

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
      last_advance_(sim.now()),
      link_seen_(links_.size(), 0),
      left_(links_.size(), 0.0),
      unfixed_(links_.size(), 0) {
  for (const LinkSpec& l : links_)
    SERVESIM_CHECK(l.bandwidth_bytes_per_s > 0 && l.latency_s >= 0, "link {} B/s, {} s",
                   l.bandwidth_bytes_per_s, l.latency_s);
}

const FlowNetwork::Flow* FlowNetwork::find(uint64_t id) const {
  for (uint32_t slot : active_)
    if (slots_[slot].id == id) return &slots_[slot];
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
  uint32_t slot;
  if (free_slots_.empty()) {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
  }
  Flow& f = slots_[slot];
  f.id = id;
  f.path = path;
  f.bytes = f.remaining_bytes = bytes;
  f.rate_bytes_per_s = 0;
  f.latency_s = latency_s;
  f.done = std::move(done);
  for (int l : path) {
    auto& on = flows_on_link_[static_cast<size_t>(l)];
    on.push_back(slot);
    LinkStats& s = stats_[static_cast<size_t>(l)];
    s.bytes += bytes;
    s.peak_flows = std::max(s.peak_flows, static_cast<int>(on.size()));
  }
  active_.push_back(slot);
  reshare(path);
  schedule_next_finish();
  return id;
}

void FlowNetwork::set_bandwidth(int link, double bandwidth_bytes_per_s) {
  SERVESIM_CHECK(bandwidth_bytes_per_s > 0, "link {} set to {} B/s", link, bandwidth_bytes_per_s);
  advance_to_now();
  links_[static_cast<size_t>(link)].bandwidth_bytes_per_s = bandwidth_bytes_per_s;
  reshare({link});
  schedule_next_finish();
}

void FlowNetwork::settle() {
  advance_to_now();
}

void FlowNetwork::advance_to_now() {
  const double dt_s = (sim_.now() - last_advance_).to_s();
  last_advance_ = sim_.now();
  if (dt_s <= 0) return;
  for (uint32_t slot : active_) {
    Flow& f = slots_[slot];
    f.remaining_bytes = std::max(0.0, f.remaining_bytes - f.rate_bytes_per_s * dt_s);
  }
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
  // keep their rates, so their finishing times stay where they are.
  const uint64_t pass = ++reshare_pass_;
  std::vector<int> links;
  std::vector<uint32_t> flows;
  for (size_t i = 0; i < seed_links.size(); ++i) {
    const int l = seed_links[i];
    if (link_seen_[static_cast<size_t>(l)]) continue;
    link_seen_[static_cast<size_t>(l)] = 1;
    links.push_back(l);
    for (uint32_t slot : flows_on_link_[static_cast<size_t>(l)]) {
      Flow& f = slots_[slot];
      if (f.visited == pass) continue;
      f.visited = pass;
      f.fixed = false;
      flows.push_back(slot);
      for (int m : f.path)
        if (!link_seen_[static_cast<size_t>(m)]) seed_links.push_back(m);
    }
  }
  for (int l : links) link_seen_[static_cast<size_t>(l)] = 0;
  std::sort(links.begin(), links.end());  // ties go to the lowest link index: deterministic
  // Progressive filling: the link offering the smallest fair share fixes the rate of its
  // unfixed flows; their bandwidth is taken from every link they cross; repeat.
  for (int l : links) {
    const auto li = static_cast<size_t>(l);
    left_[li] = links_[li].bandwidth_bytes_per_s;
    unfixed_[li] = static_cast<int>(flows_on_link_[li].size());
  }
  size_t fixed_count = 0;
  while (fixed_count < flows.size()) {
    int bottleneck = -1;
    double share = 0;
    for (int l : links) {
      const auto li = static_cast<size_t>(l);
      if (unfixed_[li] == 0) continue;
      const double s = left_[li] / unfixed_[li];
      if (bottleneck < 0 || s < share) {
        bottleneck = l;
        share = s;
      }
    }
    SERVESIM_CHECK(bottleneck >= 0, "{} flows left without a link", flows.size() - fixed_count);
    for (uint32_t slot : flows_on_link_[static_cast<size_t>(bottleneck)]) {
      Flow& f = slots_[slot];
      if (f.fixed) continue;
      f.fixed = true;
      ++fixed_count;
      f.rate_bytes_per_s = share;
      for (int m : f.path) {
        const auto mi = static_cast<size_t>(m);
        left_[mi] = std::max(0.0, left_[mi] - share);
        --unfixed_[mi];
      }
    }
  }
  for (int l : links) {
    double used = 0;
    for (uint32_t slot : flows_on_link_[static_cast<size_t>(l)])
      used += slots_[slot].rate_bytes_per_s;
    used_bytes_per_s_[static_cast<size_t>(l)] = used;
  }
}

void FlowNetwork::schedule_next_finish() {
  if (finish_event_.valid()) sim_.cancel(finish_event_);
  finish_event_ = EventId{};
  double earliest_s = -1;
  for (uint32_t slot : active_) {
    const Flow& f = slots_[slot];
    const double t_s = f.remaining_bytes / f.rate_bytes_per_s;
    if (earliest_s < 0 || t_s < earliest_s) earliest_s = t_s;
  }
  if (earliest_s < 0) return;
  finish_event_ = sim_.schedule_in(Time::from_s(earliest_s), Phase::kTransfer, [this] {
    finish_event_ = EventId{};
    finish_due();
  });
}

void FlowNetwork::finish_due() {
  advance_to_now();
  // Done: less than a nanosecond's worth of bytes left (the clock's rounding of the finish).
  std::vector<int> seeds;
  size_t kept = 0;
  for (uint32_t slot : active_) {
    Flow& f = slots_[slot];
    if (f.remaining_bytes > f.rate_bytes_per_s * 1e-9) {
      active_[kept++] = slot;
      continue;
    }
    for (int l : f.path) {
      auto& on = flows_on_link_[static_cast<size_t>(l)];
      on.erase(std::find(on.begin(), on.end(), slot));
      seeds.push_back(l);
    }
    // The last byte left now; the receiver has it the path's latency later.
    sim_.schedule_in(Time::from_s(f.latency_s), Phase::kTransfer,
                     [this, bytes = f.bytes, done = std::move(f.done)] {
                       bytes_received_ += bytes;
                       done();
                     });
    f.done = nullptr;
    f.path.clear();
    free_slots_.push_back(slot);
  }
  active_.resize(kept);
  if (!seeds.empty()) reshare(seeds);  // links left without flows get no rate
  schedule_next_finish();
}

void FlowNetwork::check_conservation() const {
  SERVESIM_CHECK(active_.empty(), "{} flows still in progress at the end", active_.size());
  SERVESIM_CHECK(std::fabs(bytes_sent_ - bytes_received_) <= 1e-9 * std::max(1.0, bytes_sent_),
                 "network bytes not conserved: {} sent, {} received", bytes_sent_, bytes_received_);
}

}  // namespace servesim

#include "models/step_traffic.h"

#include <algorithm>
#include <map>

#include "sim/error.h"

namespace servesim {

StepTraffic::StepTraffic(ClusterNetwork& network, const std::vector<int>& gpus, int tp, int pp,
                         int64_t num_layers)
    : network_(network) {
  SERVESIM_CHECK(static_cast<int>(gpus.size()) == tp * pp, "{} GPUs for tp {} x pp {}", gpus.size(),
                 tp, pp);
  auto crosses = [&](int from, int to) {
    for (int ch : network_.channel_path(from, to))
      if (network_.link_of_channel(ch).kind == LinkKind::kNetwork) return true;
    return false;
  };
  auto gpu = [&](int stage, int rank) { return gpus[static_cast<size_t>(stage * tp + rank)]; };
  const Cluster& cluster = network_.cluster();
  auto add = [&](Kind kind, double share, std::vector<Transfer> transfers) {
    if (transfers.empty()) return;
    Phase phase{kind, share, std::move(transfers), 0, 0};
    std::map<int, int> load;  // transfers per channel
    for (const Transfer& t : phase.transfers) {
      double latency_s = 0;
      for (int ch : network_.channel_path(t.from_gpu, t.to_gpu)) {
        ++load[ch];
        latency_s += network_.link_of_channel(ch).spec.latency_s;
      }
      phase.latency_s = std::max(phase.latency_s, latency_s);
    }
    for (auto [ch, n] : load) {
      phase.bottleneck_s_per_byte = std::max(
          phase.bottleneck_s_per_byte, n / network_.link_of_channel(ch).spec.bandwidth_bytes_per_s);
      if (std::find(channels_.begin(), channels_.end(), ch) == channels_.end())
        channels_.push_back(ch);
    }
    phases_.push_back(std::move(phase));
  };
  for (int s = 0; s < pp; ++s) {
    const double stage_share = stage_layer_share(num_layers, pp, s);
    std::vector<Transfer> ring;
    for (int t = 0; t < tp && tp > 1; ++t)
      if (crosses(gpu(s, t), gpu(s, (t + 1) % tp)))
        ring.push_back({gpu(s, t), gpu(s, (t + 1) % tp)});
    add(Kind::kTp, stage_share, std::move(ring));
    // The stage's GPUs by node, in rank order: a GPU sends to the GPU of its own position in
    // each other node (wrapping round a node with fewer).
    std::map<int, std::vector<int>> by_node;
    for (int t = 0; t < tp; ++t) by_node[cluster.gpus()[gpu(s, t)].node].push_back(gpu(s, t));
    if (by_node.size() > 1) {
      std::vector<Transfer> all_to_all;
      for (const auto& [node, members] : by_node)
        for (size_t k = 0; k < members.size(); ++k)
          for (const auto& [other, peers] : by_node)
            if (other != node) all_to_all.push_back({members[k], peers[k % peers.size()]});
      add(Kind::kEp, stage_share / static_cast<double>(by_node.size() - 1), std::move(all_to_all));
    }
    if (s + 1 < pp) {
      std::vector<Transfer> hop;
      for (int t = 0; t < tp; ++t)
        if (crosses(gpu(s, t), gpu(s + 1, t))) hop.push_back({gpu(s, t), gpu(s + 1, t)});
      add(Kind::kPp, 1.0 / tp, std::move(hop));
    }
  }
}

double StepTraffic::bytes_of(const Phase& phase, const IterationCost& cost) const {
  switch (phase.kind) {
    case Kind::kTp:
      return phase.share * cost.tp_bytes_per_gpu;
    case Kind::kEp:
      return phase.share * cost.ep_inter_bytes_per_gpu;
    case Kind::kPp:
      return phase.share * cost.pp_bytes_per_hop;
  }
  return 0;
}

double StepTraffic::solo_s(const IterationCost& cost) const {
  double total_s = 0;
  for (const Phase& phase : phases_)
    if (const double bytes = bytes_of(phase, cost); bytes > 0)
      total_s += phase.latency_s + bytes * phase.bottleneck_s_per_byte;
  return total_s;
}

void StepTraffic::send(const IterationCost& cost, std::function<void()> done) {
  SERVESIM_CHECK(!done_, "a replica's iteration traffic sent while its last is in flight");
  cost_ = cost;
  done_ = std::move(done);
  send_phase(0);
}

void StepTraffic::send_phase(size_t index) {
  // Phases without bytes (no TP traffic in this step, say) are skipped, as the price has none.
  while (index < phases_.size() && bytes_of(phases_[index], cost_) <= 0) ++index;
  if (index == phases_.size()) {
    auto done = std::move(done_);
    done_ = nullptr;
    done();
    return;
  }
  const Phase& phase = phases_[index];
  const double bytes = bytes_of(phase, cost_);
  transfers_left_ = static_cast<int>(phase.transfers.size());
  for (const Transfer& t : phase.transfers) {
    bytes_sent_ += bytes;
    network_.send(t.from_gpu, t.to_gpu, bytes, [this, index] {
      if (--transfers_left_ == 0) send_phase(index + 1);
    });
  }
}

}  // namespace servesim

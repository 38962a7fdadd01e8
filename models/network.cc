#include "models/network.h"

namespace servesim {
namespace {

std::vector<FlowNetwork::LinkSpec> channels_of(const Cluster& cluster) {
  std::vector<FlowNetwork::LinkSpec> channels;
  for (const Link& l : cluster.links()) {
    const FlowNetwork::LinkSpec spec{l.spec.bandwidth_bytes_per_s, l.spec.latency_s};
    channels.push_back(spec);  // from end A to end B
    channels.push_back(spec);  // back
  }
  return channels;
}

}  // namespace

ClusterNetwork::ClusterNetwork(Simulator& sim, const Cluster& cluster)
    : cluster_(cluster), flows_(sim, channels_of(cluster)) {}

const std::vector<int>& ClusterNetwork::channel_path(int from_gpu, int to_gpu) {
  const uint64_t key = static_cast<uint64_t>(from_gpu) << 32 | static_cast<uint32_t>(to_gpu);
  auto [it, inserted] = paths_.try_emplace(key);
  if (inserted && from_gpu != to_gpu) {
    const Path p = cluster_.gpu_path(from_gpu, to_gpu);
    for (size_t k = 0; k < p.link_ids.size(); ++k)
      it->second.push_back(channel(p.link_ids[k], p.forward[k]));
  }
  return it->second;
}

void ClusterNetwork::send(int from_gpu, int to_gpu, double bytes, FlowNetwork::Done done) {
  ++flows_started_;
  flows_.start(channel_path(from_gpu, to_gpu), bytes, std::move(done));
}

}  // namespace servesim

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
    : cluster_(cluster),
      flows_(sim, channels_of(cluster)),
      paths_(cluster.gpus().size() * cluster.gpus().size()),
      path_known_(paths_.size(), 0) {}

void ClusterNetwork::send(int from_gpu, int to_gpu, double bytes, FlowNetwork::Done done) {
  const size_t key =
      static_cast<size_t>(from_gpu) * cluster_.gpus().size() + static_cast<size_t>(to_gpu);
  if (!path_known_[key]) {
    path_known_[key] = 1;
    if (from_gpu != to_gpu) {
      const Path p = cluster_.gpu_path(from_gpu, to_gpu);
      for (size_t k = 0; k < p.link_ids.size(); ++k)
        paths_[key].push_back(channel(p.link_ids[k], p.forward[k]));
    }
  }
  ++flows_started_;
  flows_.start(paths_[key], bytes, std::move(done));
}

}  // namespace servesim

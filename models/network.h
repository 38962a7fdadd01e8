#pragma once
/// The cluster's links as shared resources: transfers between GPUs become flows on a
/// FlowNetwork (models/flow_network.h) whose channels are the cluster's links, one channel per
/// direction (a link's bandwidth is per direction, so the two directions never compete).

#include <unordered_map>
#include <vector>

#include "models/cluster.h"
#include "models/flow_network.h"

namespace servesim {

class ClusterNetwork {
 public:
  ClusterNetwork(Simulator& sim, const Cluster& cluster);

  /// Sends `bytes` from GPU `from` to GPU `to` along the cluster's fastest path between them;
  /// `done` runs when the last byte has arrived (at once, after no delay, when from == to).
  void send(int from_gpu, int to_gpu, double bytes, FlowNetwork::Done done);

  /// The channels (link and direction) of the fastest path from GPU `from` to GPU `to`.
  const std::vector<int>& channel_path(int from_gpu, int to_gpu);
  /// A channel's link: its bandwidth (per direction) and latency, and whether it is a network
  /// link (between nodes).
  const Link& link_of_channel(int channel) const {
    return cluster_.links()[static_cast<size_t>(channel / 2)];
  }
  /// Per link and direction ([0] from its end A to B, [1] back): what the flows did.
  const FlowNetwork::LinkStats& stats(int link, bool forward) const {
    return flows_.stats(channel(link, forward));
  }
  const Cluster& cluster() const { return cluster_; }
  /// The cluster's links (each has two directions).
  int links() const { return static_cast<int>(cluster_.links().size()); }
  /// Flows started so far.
  uint64_t flows_started() const { return flows_started_; }
  void settle() { flows_.settle(); }
  double bytes_sent() const { return flows_.bytes_sent(); }
  double bytes_received() const { return flows_.bytes_received(); }
  /// Throws InvariantError unless every byte sent arrived and no flow is in progress.
  void check_conservation() const { flows_.check_conservation(); }

 private:
  static int channel(int link, bool forward) { return 2 * link + (forward ? 0 : 1); }

  const Cluster& cluster_;
  FlowNetwork flows_;
  /// Channel paths by (from, to) GPU, found once when first used.
  std::unordered_map<uint64_t, std::vector<int>> paths_;
  uint64_t flows_started_ = 0;
};

}  // namespace servesim

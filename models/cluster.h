#pragma once
/// The cluster as a graph: GPUs, each node's host memory and network interface, and one
/// network switch; edges are NVLink, PCIe and network links with a bandwidth and a latency.
/// Paths between devices are found by the graph library (Dijkstra over a transfer-time weight)
/// rather than by hand-written rules, so unusual topologies need no special cases.

#include <boost/graph/adjacency_list.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "models/gpu.h"

namespace servesim {

enum class LinkKind { kNvlink, kPcie, kNetwork };
std::string_view link_kind_name(LinkKind k);

struct LinkSpec {
  double bandwidth_bytes_per_s = 0;  ///< per direction
  double latency_s = 0;
};

enum class DeviceKind { kGpu, kHost, kNic, kSwitch };

struct Device {
  DeviceKind kind;
  std::string name;  ///< "C1/0" for GPU 0 of node C1, "C1/host", "C1/nic", "switch"
  int node = -1;
  int gpu_index = -1;  ///< index into Cluster::gpus() for GPUs
};

struct Link {
  LinkKind kind;
  LinkSpec spec;
  int id = 0;        ///< index into Cluster::links()
  std::string name;  ///< "A-B": its two ends; bytes from A to B travel it forward
  size_t end_a = 0;  ///< graph vertex of end A
};

/// The end-to-end figures of a path: the bottleneck bandwidth and the summed latency.
struct Path {
  std::vector<int> link_ids;
  /// Per link of link_ids, whether the path crosses it from its end A to its end B.
  std::vector<bool> forward;
  double bandwidth_bytes_per_s = 0;
  double latency_s = 0;
  double transfer_time_s(double bytes) const {
    return link_ids.empty() ? 0.0 : latency_s + bytes / bandwidth_bytes_per_s;
  }
};

struct NodeSpec {
  std::string name;
  std::vector<GpuSpec> gpus;
  double host_memory_bytes = 0;
  LinkSpec pcie;
  bool has_nvlink = false;
  LinkSpec nvlink;
};

struct GpuRef {
  GpuSpec spec;
  int node = 0;
  int index_in_node = 0;
  std::string name;  ///< "C1/0"
};

class Cluster {
 public:
  using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS, Device, Link>;

  Cluster(std::vector<NodeSpec> nodes, LinkSpec network);

  const std::vector<NodeSpec>& nodes() const { return nodes_; }
  const std::vector<GpuRef>& gpus() const { return gpus_; }
  const std::vector<Link>& links() const { return links_; }
  /// GPU index by "NODE/INDEX" name, or -1.
  int find_gpu(std::string_view name) const;
  int find_node(std::string_view name) const;
  /// Fastest path between two GPUs (empty when a == b).
  Path gpu_path(int gpu_a, int gpu_b) const;
  /// Path from a GPU to its node's host memory (the PCIe link).
  Path host_path(int gpu) const;

 private:
  Path shortest_path(Graph::vertex_descriptor from, Graph::vertex_descriptor to) const;

  std::vector<NodeSpec> nodes_;
  std::vector<GpuRef> gpus_;
  std::vector<Link> links_;
  Graph graph_;
  std::vector<Graph::vertex_descriptor> gpu_vertex_;
  std::vector<Graph::vertex_descriptor> host_vertex_;
};

}  // namespace servesim

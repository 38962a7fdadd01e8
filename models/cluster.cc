#include "models/cluster.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/graph/dijkstra_shortest_paths.hpp>
#include <boost/property_map/transform_value_property_map.hpp>

#include "sim/error.h"

namespace servesim {

std::string_view link_kind_name(LinkKind k) {
  switch (k) {
    case LinkKind::kNvlink:
      return "nvlink";
    case LinkKind::kPcie:
      return "pcie";
    case LinkKind::kNetwork:
      return "network";
  }
  return "?";
}

Cluster::Cluster(std::vector<NodeSpec> nodes, LinkSpec network) : nodes_(std::move(nodes)) {
  auto add_link = [&](Graph::vertex_descriptor a, Graph::vertex_descriptor b, LinkKind kind,
                      LinkSpec spec) {
    Link link{kind, spec, static_cast<int>(links_.size()),
              fmt::format("{}-{}", graph_[a].name, graph_[b].name), a};
    links_.push_back(link);
    boost::add_edge(a, b, link, graph_);
  };
  const auto network_switch = boost::add_vertex(Device{DeviceKind::kSwitch, "switch"}, graph_);
  for (size_t n = 0; n < nodes_.size(); ++n) {
    const NodeSpec& node = nodes_[n];
    const int node_index = static_cast<int>(n);
    const auto host = boost::add_vertex(
        Device{DeviceKind::kHost, fmt::format("{}/host", node.name), node_index}, graph_);
    const auto nic = boost::add_vertex(
        Device{DeviceKind::kNic, fmt::format("{}/nic", node.name), node_index}, graph_);
    host_vertex_.push_back(host);
    add_link(nic, network_switch, LinkKind::kNetwork, network);
    std::vector<Graph::vertex_descriptor> node_gpus;
    for (size_t g = 0; g < node.gpus.size(); ++g) {
      const int gpu_index = static_cast<int>(gpus_.size());
      const std::string name = fmt::format("{}/{}", node.name, g);
      gpus_.push_back(GpuRef{node.gpus[g], node_index, static_cast<int>(g), name});
      const auto v =
          boost::add_vertex(Device{DeviceKind::kGpu, name, node_index, gpu_index}, graph_);
      gpu_vertex_.push_back(v);
      node_gpus.push_back(v);
      // Host memory and the NIC both hang off the GPU's PCIe link; modelled as two edges of
      // the same bandwidth so that host traffic and network traffic are counted apart.
      add_link(v, host, LinkKind::kPcie, node.pcie);
      add_link(v, nic, LinkKind::kPcie, node.pcie);
    }
    if (node.has_nvlink)
      for (size_t a = 0; a < node_gpus.size(); ++a)
        for (size_t b = a + 1; b < node_gpus.size(); ++b)
          add_link(node_gpus[a], node_gpus[b], LinkKind::kNvlink, node.nvlink);
  }
}

int Cluster::find_gpu(std::string_view name) const {
  for (size_t i = 0; i < gpus_.size(); ++i)
    if (gpus_[i].name == name) return static_cast<int>(i);
  return -1;
}

int Cluster::find_node(std::string_view name) const {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].name == name) return static_cast<int>(i);
  return -1;
}

Path Cluster::shortest_path(Graph::vertex_descriptor from, Graph::vertex_descriptor to) const {
  Path path;
  if (from == to) return path;
  // Weight: time to move a 1 MiB message, so both latency and bandwidth matter.
  constexpr double kReferenceBytes = 1 << 20;
  auto weight = boost::make_transform_value_property_map(
      [](const Link& l) {
        return l.spec.latency_s + kReferenceBytes / l.spec.bandwidth_bytes_per_s;
      },
      boost::get(boost::edge_bundle, graph_));
  const size_t n = boost::num_vertices(graph_);
  std::vector<Graph::vertex_descriptor> predecessor(n);
  std::vector<double> distance(n);
  boost::dijkstra_shortest_paths(
      graph_, from,
      boost::predecessor_map(predecessor.data()).distance_map(distance.data()).weight_map(weight));
  SERVESIM_CHECK(predecessor[to] != to, "no path between {} and {}", graph_[from].name,
                 graph_[to].name);
  path.bandwidth_bytes_per_s = std::numeric_limits<double>::infinity();
  for (auto v = to; v != from; v = predecessor[v]) {
    const auto u = predecessor[v];
    // Among parallel edges take the fastest, as Dijkstra did.
    const Link* best = nullptr;
    for (auto [e, end] = boost::out_edges(u, graph_); e != end; ++e) {
      if (boost::target(*e, graph_) != v) continue;
      const Link& l = graph_[*e];
      if (!best || l.spec.bandwidth_bytes_per_s > best->spec.bandwidth_bytes_per_s) best = &l;
    }
    path.link_ids.push_back(best->id);
    path.forward.push_back(best->end_a == u);
    path.bandwidth_bytes_per_s =
        std::min(path.bandwidth_bytes_per_s, best->spec.bandwidth_bytes_per_s);
    path.latency_s += best->spec.latency_s;
  }
  std::reverse(path.link_ids.begin(), path.link_ids.end());
  std::reverse(path.forward.begin(), path.forward.end());
  return path;
}

Path Cluster::gpu_path(int gpu_a, int gpu_b) const {
  return shortest_path(gpu_vertex_.at(gpu_a), gpu_vertex_.at(gpu_b));
}

Path Cluster::host_path(int gpu) const {
  return shortest_path(gpu_vertex_.at(gpu), host_vertex_.at(gpus_.at(gpu).node));
}

}  // namespace servesim

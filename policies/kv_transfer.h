#pragma once
/// Disaggregated serving's KV hand-off as flows on the cluster's links: a request's KV (its
/// computed tokens x the model's KV bytes per token at the KV dtype) leaves its prefill
/// replica's GPUs for its decode replica's GPUs, each GPU sending its shard in parallel (with
/// different parallelism on the two sides, shards pair up round the larger group), and
/// arrives when the slowest shard has. The flows share links max-min fairly with every other
/// flow in flight (models/network.h).

#include <memory>
#include <vector>

#include "models/instance.h"
#include "models/network.h"
#include "policies/gateway.h"

namespace servesim {

class NetworkKvMover final : public KvMover {
 public:
  /// `instances` in scenario order; `kv_bytes_per_token` for the whole model (every layer,
  /// every KV head).
  NetworkKvMover(ClusterNetwork& network, std::vector<const Instance*> instances,
                 double kv_bytes_per_token);

  void move(const Request& r, int from, int to, std::function<void(double bytes)> arrived) override;

  uint64_t transfers() const { return transfers_; }

 private:
  ClusterNetwork& network_;
  std::vector<const Instance*> instances_;
  double kv_bytes_per_token_;
  uint64_t transfers_ = 0;
};

}  // namespace servesim

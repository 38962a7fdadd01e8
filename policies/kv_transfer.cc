#include "policies/kv_transfer.h"

#include <algorithm>

namespace servesim {

NetworkKvMover::NetworkKvMover(ClusterNetwork& network, std::vector<const Instance*> instances,
                               double kv_bytes_per_token)
    : network_(network),
      instances_(std::move(instances)),
      kv_bytes_per_token_(kv_bytes_per_token) {}

void NetworkKvMover::move(const Request& r, int from, int to,
                          std::function<void(double bytes)> arrived) {
  const std::vector<int>& senders = instances_.at(static_cast<size_t>(from))->config().gpus;
  const std::vector<int>& receivers = instances_.at(static_cast<size_t>(to))->config().gpus;
  const size_t shards = std::max(senders.size(), receivers.size());
  const double bytes = static_cast<double>(r.computed_tokens) * kv_bytes_per_token_;
  ++transfers_;
  // The request arrives with its last shard; the counter lives as long as the shards do.
  auto pending = std::make_shared<size_t>(shards);
  auto done = std::make_shared<std::function<void(double)>>(std::move(arrived));
  for (size_t k = 0; k < shards; ++k)
    network_.send(senders[k % senders.size()], receivers[k % receivers.size()],
                  bytes / static_cast<double>(shards), [pending, done, bytes] {
                    if (--*pending == 0) (*done)(bytes);
                  });
}

}  // namespace servesim

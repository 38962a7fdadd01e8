#pragma once
/// A replica's per-iteration traffic that crosses the network (TP ring hops, PP stage hops and
/// EP all-to-alls between nodes), sent as flows on the cluster's links (models/network.h) so
/// that it shares them max-min fairly with every other flow: another replica's iteration
/// traffic, KV hand-offs, migrations.
///
/// The cost model prices an iteration as if each transfer had its links alone. A replica whose
/// traffic runs as flows splits the priced step in two: its compute (the price less what its
/// network transfers take alone, `solo_s`), then the transfers, stage after stage: the TP ring
/// hops that cross nodes (all at once, each GPU sending its ring share), the EP all-to-all's
/// bytes for other nodes (each GPU to the GPU of the same rank in every other node, which
/// forwards inside its node as DeepEP does), and the PP hop to the next stage (each rank to
/// its counterpart). With the links to itself the step lasts its price (up to nanosecond
/// rounding); with other flows on them it lasts longer, by what they take of the links.
///
/// The transfers of a stage are sent together after its compute rather than layer by layer:
/// under fluid sharing the bytes take as long either way while the competing load is steady;
/// per-message latencies stay in the priced compute part.

#include <cstdint>
#include <functional>
#include <vector>

#include "models/cluster.h"
#include "models/cost_model.h"
#include "models/network.h"

namespace servesim {

/// /policies/iteration_traffic: which replicas send their network-crossing iteration traffic as
/// flows. kAuto: those whose links may carry other traffic too (another such replica's, or KV
/// moved between replicas), so that a replica alone on its links keeps its exact closed-form
/// price; kFlows: every replica whose traffic crosses the network; kPriced: none.
enum class StepTrafficMode : uint8_t { kAuto, kFlows, kPriced };

class StepTraffic {
 public:
  /// `gpus` stage-major (tp per stage), as InstanceConfig::gpus.
  StepTraffic(ClusterNetwork& network, const std::vector<int>& gpus, int tp, int pp,
              int64_t num_layers);

  /// Whether any of the replica's iteration transfers crosses a network link.
  bool crosses_network() const { return !phases_.empty(); }
  /// The channels (link, direction) its transfers use, each once.
  const std::vector<int>& channels() const { return channels_; }
  /// The time `cost`'s network transfers take with their links to themselves: per phase, the
  /// most loaded channel's bytes over its bandwidth plus the longest path latency.
  double solo_s(const IterationCost& cost) const;
  /// Sends `cost`'s network transfers, phase after phase; `done` runs when the last byte of
  /// the last phase has arrived (at once when there is nothing to send).
  void send(const IterationCost& cost, std::function<void()> done);
  /// Bytes sent so far.
  double bytes_sent() const { return bytes_sent_; }

 private:
  enum class Kind : uint8_t { kTp, kEp, kPp };
  struct Transfer {
    int from_gpu = 0;
    int to_gpu = 0;
  };
  /// Transfers sent together, each carrying `share` of the cost's bytes of its kind.
  struct Phase {
    Kind kind = Kind::kTp;
    double share = 0;
    std::vector<Transfer> transfers;
    /// max over channels of (transfers on it / its bandwidth): seconds per byte of a transfer.
    double bottleneck_s_per_byte = 0;
    double latency_s = 0;  ///< the longest path's
  };

  double bytes_of(const Phase& phase, const IterationCost& cost) const;
  void send_phase(size_t index);

  ClusterNetwork& network_;
  std::vector<Phase> phases_;
  std::vector<int> channels_;
  double bytes_sent_ = 0;
  // The iteration in flight.
  IterationCost cost_;
  std::function<void()> done_;
  int transfers_left_ = 0;
};

}  // namespace servesim

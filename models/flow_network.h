#pragma once
/// Links as shared resources: a transfer is a flow of bytes over a path of links, and the flows
/// that share a link share its bandwidth max-min fairly (progressive filling, as SimGrid's LV08
/// model does without its latency correction). Each flow start or finish re-solves the rates of
/// the flows it touches (those linked to it through shared links) and moves their completion
/// events; between two such changes every rate is constant, so a flow's completion time is
/// known in closed form and no event fires per byte.
///
/// A flow's bytes leave at its rate; the receiver has the last byte the path's latency after
/// the last byte left (the sum of its links' latencies). The network checks its own
/// conservation law: bytes sent = bytes received, per flow and in total.

#include <cstdint>
#include <functional>
#include <vector>

#include "sim/simulator.h"

namespace servesim {

class FlowNetwork {
 public:
  struct LinkSpec {
    double bandwidth_bytes_per_s = 0;  ///< > 0
    double latency_s = 0;
  };
  /// Per link, over the run: what crossed it and how busy it was.
  struct LinkStats {
    double bytes = 0;
    double busy_s = 0;            ///< time with at least one flow on the link
    double flow_seconds = 0;      ///< integral of the number of flows over time
    double transfer_seconds = 0;  ///< integral of (rate used / bandwidth): utilisation
    int peak_flows = 0;
  };
  using Done = std::function<void()>;

  FlowNetwork(Simulator& sim, std::vector<LinkSpec> links);

  /// Starts a flow of `bytes` (>= 0) over `path` (link indices; empty: delivered after no
  /// delay). `done` runs when the receiver has the last byte.
  uint64_t start(const std::vector<int>& path, double bytes, Done done);

  /// A link's bandwidth changes now (a degraded link); the flows on it are re-shared.
  void set_bandwidth(int link, double bandwidth_bytes_per_s);

  size_t active_flows() const { return active_.size(); }
  /// The rate a flow in progress gets now (bytes/s), 0 when it is not in progress.
  double rate_of(uint64_t flow) const;
  const LinkStats& stats(int link) const { return stats_[static_cast<size_t>(link)]; }
  /// Brings the per-link integrals up to now (call before reading stats at the end).
  void settle();
  double bytes_sent() const { return bytes_sent_; }
  double bytes_received() const { return bytes_received_; }
  /// Throws InvariantError unless every byte sent was received and no flow is in progress.
  void check_conservation() const;

 private:
  struct Flow {
    uint64_t id = 0;
    std::vector<int> path;
    double bytes = 0;
    double remaining_bytes = 0;
    double rate_bytes_per_s = 0;
    double latency_s = 0;
    Done done;
    bool fixed = false;    ///< scratch of reshare: its rate is set
    uint64_t visited = 0;  ///< scratch of reshare: the pass that last reached it
  };

  /// Moves every flow's remaining bytes and the link integrals to now at the current rates.
  void advance_to_now();
  /// Re-solves the rates of the flows connected (through shared links) to `seeds`.
  void reshare(std::vector<int> seed_links);
  /// Moves the network's one completion event to the earliest finish at the current rates.
  void schedule_next_finish();
  /// Ends every flow whose last byte has left (up to the nanosecond rounding of the clock).
  void finish_due();
  const Flow* find(uint64_t id) const;

  Simulator& sim_;
  std::vector<LinkSpec> links_;
  std::vector<LinkStats> stats_;
  /// Flows live in slots reused through a free list; links and the active list hold slots.
  std::vector<Flow> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<std::vector<uint32_t>> flows_on_link_;
  std::vector<double> used_bytes_per_s_;  ///< per link, sum of its flows' rates
  std::vector<uint32_t> active_;          ///< in progress, in start order
  /// One event for the whole network, at the earliest finish: a change of rates moves it
  /// alone, not one event per flow.
  EventId finish_event_;
  uint64_t next_id_ = 0;
  uint64_t reshare_pass_ = 0;
  Time last_advance_;
  double bytes_sent_ = 0, bytes_received_ = 0;
  // Scratch of reshare, kept between calls.
  std::vector<char> link_seen_;
  std::vector<double> left_;
  std::vector<int> unfixed_;
};

}  // namespace servesim

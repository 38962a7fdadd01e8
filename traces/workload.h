#pragma once
/// Workload sources: where requests come from. Open-loop sources (traces, generators) are
/// streams pulled one request at a time, so memory does not grow with trace length. A
/// closed-loop source sends a client's next request when its previous one is done.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "models/request.h"
#include "sim/json_reader.h"
#include "sim/simulator.h"

namespace servesim {

/// A stream of requests in non-decreasing arrival order.
class ArrivalStream {
 public:
  virtual ~ArrivalStream() = default;
  /// The next request, or nullopt at the end. Throws InputError naming file and line on a
  /// malformed trace row.
  virtual std::optional<RequestSpec> next() = 0;
};

using SubmitFn = std::function<void(const RequestSpec&)>;

class Workload {
 public:
  virtual ~Workload() = default;
  /// Schedules the first arrivals; `submit` is called at each arrival time.
  virtual void start(Simulator& sim, SubmitFn submit) = 0;
  /// A request of `client_id` finished or was dropped (closed loop sends the next one).
  virtual void on_request_done(Simulator& sim, int64_t client_id) { (void)sim, (void)client_id; }
  /// Requests to discard from the summary statistics (closed-loop warm-up).
  virtual int64_t warmup_requests() const { return 0; }
};

/// Builds the workload from the scenario's /workload object. `base_dir` resolves relative
/// trace paths (the scenario file's folder); `seed` seeds the named RNG streams.
std::unique_ptr<Workload> make_workload(JsonObject& workload, const std::string& base_dir,
                                        uint64_t seed);

}  // namespace servesim

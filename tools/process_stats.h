#pragma once
/// What a run cost the machine, for `servesim run --stats` and tools/bench.sh: the numbers a
/// performance claim needs, measured inside the process so no external tool is required.

#include <cstdint>
#include <string>

namespace servesim {

/// Peak resident set size of this process in bytes (VmHWM in /proc/self/status); 0 where the
/// file does not exist (not Linux).
int64_t peak_rss_bytes();

struct RunCost {
  double wall_s = 0;       ///< load + simulate + build the result (+ write it)
  double simulated_s = 0;  ///< simulated time at the end of the run
  uint64_t events = 0;     ///< events the simulator processed
  int64_t peak_rss_bytes = 0;
};

/// One line, key=value pairs, stable for scripts to parse:
/// "stats: wall_s=0.412 simulated_s=3600.1 sim_per_wall=8738 events=1234567 events_per_s=2996522
/// peak_rss_mib=85.3"
std::string format_run_cost(const RunCost& cost);

}  // namespace servesim

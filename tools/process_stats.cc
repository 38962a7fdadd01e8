#include "tools/process_stats.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

namespace servesim {

int64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    int64_t kib = 0;
    fields >> kib;  // "VmHWM:     123456 kB"
    return kib * 1024;
  }
  return 0;
}

std::string format_run_cost(const RunCost& c) {
  const double ratio = c.wall_s > 0 ? c.simulated_s / c.wall_s : 0.0;
  const double rate = c.wall_s > 0 ? static_cast<double>(c.events) / c.wall_s : 0.0;
  return fmt::format(
      "stats: wall_s={:.3f} simulated_s={:.1f} sim_per_wall={:.0f} events={} events_per_s={:.0f} "
      "peak_rss_mib={:.1f}",
      c.wall_s, c.simulated_s, ratio, c.events, rate,
      static_cast<double>(c.peak_rss_bytes) / (1024.0 * 1024.0));
}

}  // namespace servesim

#include "sim/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace servesim {

PercentileRank percentile_rank(uint64_t count, double p) {
  const double rank = p / 100.0 * static_cast<double>(count - 1);
  const auto lo = static_cast<uint64_t>(std::floor(rank));
  return {lo, std::min(lo + 1, count - 1), rank - static_cast<double>(lo)};
}

void write_latency_entries(nlohmann::ordered_json& out, const std::string& name, double mean,
                           double std, const std::function<double(double)>& percentile) {
  out["mean_" + name] = mean;
  out["median_" + name] = percentile(50);
  out["std_" + name] = std;
  out["p90_" + name] = percentile(90);
  out["p95_" + name] = percentile(95);
  out["p99_" + name] = percentile(99);
}

double percentile_sorted(std::span<const double> sorted, double p) {
  if (sorted.empty()) return 0;
  const PercentileRank r = percentile_rank(sorted.size(), p);
  return sorted[r.lo] + (sorted[r.hi] - sorted[r.lo]) * r.frac;
}

void add_latency_summary(nlohmann::ordered_json& out, const std::string& name,
                         std::span<double> values) {
  std::sort(values.begin(), values.end());
  const double n = static_cast<double>(values.size());
  const double mean = values.empty() ? 0 : std::accumulate(values.begin(), values.end(), 0.0) / n;
  double var = 0;
  for (double v : values) var += (v - mean) * (v - mean);
  write_latency_entries(out, name, mean, values.empty() ? 0 : std::sqrt(var / n),
                        [&](double p) { return percentile_sorted(values, p); });
}

}  // namespace servesim

#include "tools/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace servesim {

double percentile_sorted(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = p / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

void add_latency_summary(nlohmann::ordered_json& out, const std::string& name,
                         std::vector<double>& values) {
  std::sort(values.begin(), values.end());
  const double n = static_cast<double>(values.size());
  const double mean = values.empty() ? 0 : std::accumulate(values.begin(), values.end(), 0.0) / n;
  double var = 0;
  for (double v : values) var += (v - mean) * (v - mean);
  out["mean_" + name] = mean;
  out["median_" + name] = percentile_sorted(values, 50);
  out["std_" + name] = values.empty() ? 0 : std::sqrt(var / n);
  out["p90_" + name] = percentile_sorted(values, 90);
  out["p95_" + name] = percentile_sorted(values, 95);
  out["p99_" + name] = percentile_sorted(values, 99);
}

}  // namespace servesim

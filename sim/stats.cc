#include "sim/stats.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>

#include "sim/error.h"

namespace servesim {

PercentileRank percentile_rank(uint64_t count, double p) {
  const double rank = p / 100.0 * static_cast<double>(count - 1);
  const auto lo = static_cast<uint64_t>(std::floor(rank));
  return {lo, std::min(lo + 1, count - 1), rank - static_cast<double>(lo)};
}

void write_latency_entries(nlohmann::ordered_json& out, const std::string& name, double mean,
                           double std, const std::function<double(double)>& percentile) {
  out["mean_" + name] = mean;
  out["median_" + name] = percentile(kSummaryPercentiles[0]);
  out["std_" + name] = std;
  out["p90_" + name] = percentile(kSummaryPercentiles[1]);
  out["p95_" + name] = percentile(kSummaryPercentiles[2]);
  out["p99_" + name] = percentile(kSummaryPercentiles[3]);
}

double percentile_sorted(std::span<const double> sorted, double p) {
  if (sorted.empty()) return 0;
  const PercentileRank r = percentile_rank(sorted.size(), p);
  return r.between(sorted[r.lo], sorted[r.hi]);
}

void select_order_statistics(std::span<double> values, std::span<const uint64_t> ranks,
                             std::span<double> out) {
  // Ascending ranks: [begin, n) always holds the n - begin largest values, so each selection
  // works on what lies above the previous one, and the rank right after it is that part's
  // minimum. About 4n comparisons for the median and the tail percentiles, against a sort's
  // n log2 n.
  size_t begin = 0;
  for (size_t i = 0; i < ranks.size(); ++i) {
    const auto k = static_cast<size_t>(ranks[i]);
    if (k < begin) {  // a repeated rank
      out[i] = values[k];
      continue;
    }
    if (k == begin)
      std::iter_swap(values.begin() + static_cast<ptrdiff_t>(k),
                     std::min_element(values.begin() + static_cast<ptrdiff_t>(k), values.end()));
    else
      std::nth_element(values.begin() + static_cast<ptrdiff_t>(begin),
                       values.begin() + static_cast<ptrdiff_t>(k), values.end());
    out[i] = values[k];
    begin = k + 1;
  }
}

double percentile_select(std::span<double> values, double p) {
  if (values.empty()) return 0;
  const PercentileRank r = percentile_rank(values.size(), p);
  const uint64_t ranks[2] = {r.lo, r.hi};
  double at[2];
  select_order_statistics(values, ranks, at);
  return r.between(at[0], at[1]);
}

void add_latency_summary(nlohmann::ordered_json& out, const std::string& name,
                         std::span<double> values) {
  const double n = static_cast<double>(values.size());
  const double mean = values.empty() ? 0 : std::accumulate(values.begin(), values.end(), 0.0) / n;
  double var = 0;
  for (double v : values) var += (v - mean) * (v - mean);
  // The order statistics the summary's percentiles interpolate, selected rather than sorted.
  constexpr size_t kCount = std::size(kSummaryPercentiles);
  PercentileRank rank[kCount] = {};
  uint64_t ranks[2 * kCount];
  double at[2 * kCount] = {};
  if (!values.empty()) {
    for (size_t i = 0; i < kCount; ++i) {
      rank[i] = percentile_rank(values.size(), kSummaryPercentiles[i]);
      ranks[2 * i] = rank[i].lo;
      ranks[2 * i + 1] = rank[i].hi;
    }
    select_order_statistics(values, ranks, at);
  }
  write_latency_entries(out, name, mean, values.empty() ? 0 : std::sqrt(var / n), [&](double p) {
    const size_t i = static_cast<size_t>(
        std::find(std::begin(kSummaryPercentiles), std::end(kSummaryPercentiles), p) -
        std::begin(kSummaryPercentiles));
    SERVESIM_CHECK(i < kCount, "percentile {} is not a summary percentile", p);
    return rank[i].between(at[2 * i], at[2 * i + 1]);
  });
}

}  // namespace servesim

#pragma once
/// Latency statistics exactly as vLLM's benchmark_serving reports them: mean, median and
/// percentiles by linear interpolation between order statistics (numpy's default), so figures
/// compare one to one with a real benchmark run.

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

namespace servesim {

/// Where percentile `p` in [0, 100] of `count` sorted samples falls: between order statistics
/// `lo` and `hi`, `frac` of the way (numpy.percentile, method "linear"). count > 0.
struct PercentileRank {
  uint64_t lo;
  uint64_t hi;
  double frac;
};
PercentileRank percentile_rank(uint64_t count, double p);

/// The six summary entries of one metric, named as benchmark_serving names them:
/// mean_, median_, std_, p90_, p95_, p99_ NAME. `percentile(p)` gives the p-th percentile.
void write_latency_entries(nlohmann::ordered_json& out, const std::string& name, double mean,
                           double std, const std::function<double(double)>& percentile);

/// Percentile `p` in [0, 100] of sorted `values` (numpy.percentile, method "linear").
double percentile_sorted(std::span<const double> sorted, double p);

/// Adds mean_, median_, std_, p90_, p95_, p99_ NAME entries for `values` (sorted in place).
/// With no values the entries are 0, as benchmark_serving reports an empty set.
void add_latency_summary(nlohmann::ordered_json& out, const std::string& name,
                         std::span<double> values);

}  // namespace servesim

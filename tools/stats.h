#pragma once
/// Latency statistics exactly as vLLM's benchmark_serving reports them: mean, median and
/// percentiles by linear interpolation between order statistics (numpy's default), so figures
/// compare one to one with a real benchmark run.

#include <nlohmann/json.hpp>
#include <vector>

namespace servesim {

/// Percentile `p` in [0, 100] of sorted `values` (numpy.percentile, method "linear").
double percentile_sorted(const std::vector<double>& sorted, double p);

/// Adds mean_, median_, std_, p90_, p95_, p99_ NAME entries for `values` (sorted in place).
/// With no values the entries are 0, as benchmark_serving reports an empty set.
void add_latency_summary(nlohmann::ordered_json& out, const std::string& name,
                         std::vector<double>& values);

}  // namespace servesim

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
  /// The percentile from the values of order statistics `lo` and `hi`.
  double between(double lo_value, double hi_value) const {
    return lo_value + (hi_value - lo_value) * frac;
  }
};
PercentileRank percentile_rank(uint64_t count, double p);

/// The percentiles of a summary, in the order write_latency_entries writes them.
inline constexpr double kSummaryPercentiles[] = {50, 90, 95, 99};

/// The six summary entries of one metric, named as benchmark_serving names them:
/// mean_, median_, std_, p90_, p95_, p99_ NAME. `percentile(p)` gives the p-th percentile
/// (asked for each of kSummaryPercentiles).
void write_latency_entries(nlohmann::ordered_json& out, const std::string& name, double mean,
                           double std, const std::function<double(double)>& percentile);

/// Percentile `p` in [0, 100] of sorted `values` (numpy.percentile, method "linear").
double percentile_sorted(std::span<const double> sorted, double p);

/// The order statistics of `values` at `ranks` (0-based, ascending, each below the count)
/// into `out`, as a sort would place them, without sorting: `values` may be reordered. Values
/// are not NaN.
void select_order_statistics(std::span<double> values, std::span<const uint64_t> ranks,
                             std::span<double> out);
/// The same by successive partitions (std::nth_element above the previous rank), which
/// select_order_statistics uses up to 16,384 values: the reference its radix path is
/// benchmarked against.
void select_by_partition(std::span<double> values, std::span<const uint64_t> ranks,
                         std::span<double> out);

/// percentile_sorted of `values` as if sorted; `values` is reordered.
double percentile_select(std::span<double> values, double p);

/// Adds mean_, median_, std_, p90_, p95_, p99_ NAME entries for `values` (reordered: the
/// percentiles' order statistics are selected in place; mean and deviation are summed in the
/// given order). With no values the entries are 0, as benchmark_serving reports an empty set.
void add_latency_summary(nlohmann::ordered_json& out, const std::string& name,
                         std::span<double> values);

}  // namespace servesim

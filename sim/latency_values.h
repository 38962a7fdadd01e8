#pragma once
/// Per-request latencies of one metric (one sample per request), in milliseconds, in memory that
/// stops growing past a documented sample count.
///
/// Up to `exact_samples` samples (kExactSamples, 2^20, by default) every value is kept and the
/// statistics are exactly those of add_latency_summary over a vector (sim/stats.h), bit for bit.
/// Past it the values move into a QuantileSketch (sim/quantile_sketch.h): percentiles are then
/// within QuantileSketch::kRelativeError of the exact ones, and count, mean and standard
/// deviation still come from every sample (compensated long double sums of the values less the
/// first one, so a constant metric keeps a standard deviation of exactly 0). exact() tells which.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sim/huge_pages.h"
#include "sim/quantile_sketch.h"

namespace servesim {

class LatencyValues {
 public:
  static constexpr size_t kExactSamples = size_t{1} << 20;
  explicit LatencyValues(size_t exact_samples = kExactSamples) : exact_samples_(exact_samples) {}

  void add(double value_ms) {
    ++count_;
    if (!sketched_) {
      if (values_.size() == values_.capacity()) grow();
      values_.push_back(value_ms);
      if (values_.size() > exact_samples_) to_sketch();
      return;
    }
    add_to_sketch(value_ms);
  }
  uint64_t count() const { return count_; }
  /// False once past the exact sample count: percentiles are then approximate.
  bool exact() const { return !sketched_; }

  /// Adds mean_, median_, std_, p90_, p95_, p99_ NAME entries (zeros when empty); returns
  /// whether the percentiles are exact.
  bool add_summary(nlohmann::ordered_json& out, const std::string& name);

 private:
  /// A sum in long double with Neumaier's compensation.
  struct CompensatedSum {
    long double sum = 0, compensation = 0;
    void add(long double x);
    long double value() const { return sum + compensation; }
  };
  /// Doubles the room, up to the exact sample count. Blocks under 2 MiB come packed from the
  /// heap: reserving the whole limit up front would take a 2 MiB huge page per metric however
  /// few the samples, and clearing it costs more than the copies that doubling makes.
  void grow();
  void to_sketch();
  void add_to_sketch(double value_ms);

  size_t exact_samples_;
  uint64_t count_ = 0;
  HugePageVector<double> values_;  ///< every value, until sketched_
  bool sketched_ = false;
  QuantileSketch sketch_;
  double shift_ms_ = 0;  ///< the first value: sums are of value - shift
  CompensatedSum sum_, sum_sq_;
};

}  // namespace servesim

#pragma once
/// A mergeable relative-error quantile sketch: sample counts per logarithmic bucket, in memory
/// that depends on the range of the values, not on their number.
///
/// A bucket is a double's sign, exponent and top kMantissaBits mantissa bits, so 2^9 buckets
/// span each octave, the bucket of a value is found with integer operations (no log(), the same
/// on every machine) and bucket order is value order. A bucket stands for its midpoint, which
/// lies within kRelativeError (2^-10, under 0.1%) of every value in it; percentiles interpolate
/// between the midpoints of the buckets that hold the wanted order statistics (numpy "linear",
/// as percentile_sorted in sim/stats.h), clamped to the smallest and largest value seen, so each
/// is within kRelativeError of the exact percentile when the samples share a sign. Counts are
/// exact; merging two sketches gives the sketch of all their samples.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <vector>

namespace servesim {

class QuantileSketch {
 public:
  static constexpr int kMantissaBits = 9;
  /// Bound on |estimate - exact| / |exact| of every percentile (normal doubles).
  static constexpr double kRelativeError = 1.0 / (1 << (kMantissaBits + 1));

  /// Records `count` samples of `value` (not a NaN).
  void add(double value, uint64_t count = 1);
  /// Adds every sample of `other`.
  void merge(const QuantileSketch& other);

  uint64_t count() const { return count_; }
  /// Percentile `p` in [0, 100], within kRelativeError of the exact one; 0 when empty.
  double percentile(double p) const;
  /// Buckets held (memory is 8 bytes each, plus a constant).
  size_t buckets() const { return positive_.size() + negative_.size(); }

  /// Bucket of a positive value; increases with the value.
  static uint64_t positive_bucket(double value);
  /// The midpoint of a positive bucket.
  static double midpoint(uint64_t bucket);

 private:
  void add_positive(uint64_t bucket, uint64_t count);
  /// The estimate of the sample of 0-based `rank` in sorted order.
  double value_at_rank(uint64_t rank) const;

  /// Counts of positive values by bucket, from bucket positive_first_ on.
  std::vector<uint64_t> positive_;
  uint64_t positive_first_ = 0;
  uint64_t zeros_ = 0;
  /// Negative values by the bucket of their magnitude (latencies never are: kept simple).
  std::map<uint64_t, uint64_t> negative_;
  uint64_t count_ = 0;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
};

}  // namespace servesim

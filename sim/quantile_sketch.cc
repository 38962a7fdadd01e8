#include "sim/quantile_sketch.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "sim/error.h"
#include "sim/stats.h"

namespace servesim {
namespace {
constexpr int kDroppedBits = 52 - QuantileSketch::kMantissaBits;
}  // namespace

uint64_t QuantileSketch::positive_bucket(double value) {
  return std::bit_cast<uint64_t>(value) >> kDroppedBits;
}

double QuantileSketch::midpoint(uint64_t bucket) {
  const double lowest = std::bit_cast<double>(bucket << kDroppedBits);
  const double next = std::bit_cast<double>((bucket + 1) << kDroppedBits);
  return lowest + (next - lowest) / 2;
}

void QuantileSketch::add(double value, uint64_t count) {
  SERVESIM_CHECK(!std::isnan(value), "a latency sample is not a number");
  if (count == 0) return;
  count_ += count;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  if (value == 0) {
    zeros_ += count;
    return;
  }
  if (value < 0) {
    negative_[positive_bucket(-value)] += count;
    return;
  }
  add_positive(positive_bucket(value), count);
}

void QuantileSketch::add_positive(uint64_t bucket, uint64_t count) {
  if (positive_.empty()) {
    positive_first_ = bucket;
    positive_.push_back(count);
    return;
  }
  if (bucket < positive_first_) {
    positive_.insert(positive_.begin(), static_cast<size_t>(positive_first_ - bucket), 0);
    positive_first_ = bucket;
  } else if (bucket - positive_first_ >= positive_.size()) {
    positive_.resize(static_cast<size_t>(bucket - positive_first_) + 1, 0);
  }
  positive_[static_cast<size_t>(bucket - positive_first_)] += count;
}

void QuantileSketch::merge(const QuantileSketch& other) {
  for (const auto& [bucket, n] : other.negative_) negative_[bucket] += n;
  for (size_t i = 0; i < other.positive_.size(); ++i)
    if (other.positive_[i] > 0) add_positive(other.positive_first_ + i, other.positive_[i]);
  zeros_ += other.zeros_;
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

double QuantileSketch::value_at_rank(uint64_t rank) const {
  // Sorted order: negatives from the largest magnitude, zeros, positives from the smallest.
  for (auto it = negative_.rbegin(); it != negative_.rend(); ++it) {
    if (rank < it->second) return -midpoint(it->first);
    rank -= it->second;
  }
  if (rank < zeros_) return 0;
  rank -= zeros_;
  for (size_t i = 0; i < positive_.size(); ++i) {
    if (rank < positive_[i]) return midpoint(positive_first_ + i);
    rank -= positive_[i];
  }
  SERVESIM_CHECK(false, "rank beyond the {} samples held", count_);
  return 0;
}

double QuantileSketch::percentile(double p) const {
  if (count_ == 0) return 0;
  const PercentileRank rank = percentile_rank(count_, p);
  // The first and last order statistics are known exactly; the others lie in [min, max], so
  // clamping only brings an estimate closer.
  const auto estimate = [&](uint64_t r) {
    if (r == 0) return min_;
    if (r + 1 == count_) return max_;
    return std::clamp(value_at_rank(r), min_, max_);
  };
  const double lo = estimate(rank.lo);
  const double hi = rank.hi == rank.lo ? lo : estimate(rank.hi);
  return rank.between(lo, hi);
}

}  // namespace servesim

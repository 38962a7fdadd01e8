#pragma once
/// The durations of a run of decode steps computed in closed form: the first step lasts
/// `first_ns`; step j >= 1 lasts d0_s + slope_s * j seconds (contexts grow by one token a step,
/// and the cost is affine in context), rounded to the nanosecond and at least 1 ns, exactly as
/// the replica advances its clock. Five numbers stand for any number of steps, so latency
/// statistics can keep the series and expand it when they are asked for.

#include <algorithm>
#include <cstdint>

#include "sim/time.h"

namespace servesim {

struct StepSeries {
  int64_t first_ns = 0;
  double d0_s = 0;
  double slope_s = 0;
  int64_t steps = 1;

  int64_t duration_ns(int64_t j) const {
    if (j == 0) return first_ns;
    return std::max<int64_t>(Time::from_s(d0_s + slope_s * static_cast<double>(j)).ns, 1);
  }
  /// duration_ns(j) for 1 <= j < steps once duration_ns(1) and duration_ns(steps - 1) have
  /// been computed (checked): steps j >= 1 are monotone in j, so every one between is in range.
  int64_t later_duration_ns(int64_t j) const {
    return std::max<int64_t>(
        Time::from_s_within_horizon(d0_s + slope_s * static_cast<double>(j)).ns, 1);
  }
};

}  // namespace servesim

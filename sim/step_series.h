#pragma once
/// The durations of a run of decode steps computed in closed form: the first step lasts
/// `first_ns`; step j >= 1 lasts d0_s + slope_s * j seconds (contexts grow by one token a step,
/// and the cost is affine in context), rounded to the nanosecond and at least 1 ns, exactly as
/// the replica advances its clock. Five numbers stand for any number of steps, so latency
/// statistics can keep the series and expand it when they are asked for.

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "sim/time.h"

namespace servesim {

/// Sums over a range of a series' later steps (j >= 1), what a stretch's end time and the
/// inter-token statistics need of them, so that neither reads the steps again.
struct LaterStepSums {
  int64_t steps = 0;
  int64_t sum_ns = 0;   ///< of the durations: the stretch's span after its first step
  int64_t base_ns = 0;  ///< the least duration
  /// Of (duration - base_ns) and of its square, exact in 64 bits when squares_exact (steps x
  /// spread^2 < 2^64, durations within [0, 2^40) ns); else left 0.
  uint64_t excess_sum_ns = 0;
  uint64_t excess_sq_sum = 0;
  bool squares_exact = false;
};

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
  /// Calls f(later_duration_ns(j)) for j in [begin, end), 1 <= begin, under the same condition,
  /// in about half the instructions (planning and statistics take every step): j counts in
  /// double (exact below 2^53); halves below zero are not rounded away from zero, which cannot
  /// matter once the result is raised to 1 ns; and that raise is left out when both ends are
  /// at least 1 ns (the rounding is monotone in j, so every step between is too).
  template <class F>
  void for_each_later(int64_t begin, int64_t end, F&& f) const {
    if (begin >= end) return;
    const auto rounded = [d0 = d0_s, slope = slope_s](double j) {
      const double x = (d0 + slope * j) * 1e9;
      const auto whole = static_cast<int64_t>(x);
      return whole + static_cast<int64_t>(x - static_cast<double>(whole) >= 0.5);
    };
    const auto each = [&](auto raise) {
      double x_j = static_cast<double>(begin);
      for (int64_t j = begin; j < end; ++j, x_j += 1.0) {
        const int64_t ns = rounded(x_j);
        f(raise ? std::max<int64_t>(ns, 1) : ns);
      }
    };
    if (rounded(static_cast<double>(begin)) >= 1 && rounded(static_cast<double>(end - 1)) >= 1)
      each(std::false_type{});
    else
      each(std::true_type{});
  }
  /// Calls f(later_duration_ns(j)) for j in [begin, end) as for_each_later does, converting
  /// them first in blocks, with AVX2 four steps an instruction.
  template <class F>
  void for_each_later_in_lanes(int64_t begin, int64_t end, F&& f) const {
    constexpr int64_t kBlock = 256;
    int32_t block[kBlock];
    for (int64_t at = begin; at < end; at += kBlock) {
      const int64_t to = std::min(end, at + kBlock);
      if (!later_durations(at, to, block)) {
        for_each_later(at, to, f);
        continue;
      }
      for (const int32_t* v = block; v != block + (to - at); ++v) f(int64_t{*v});
    }
  }
  /// Writes later_duration_ns(j) for j in [begin, end) to `out` when they convert in lanes
  /// (AVX2, each under 2^30 ns, none raised to 1 ns); false, writing nothing, otherwise.
  bool later_durations(int64_t begin, int64_t end, int32_t* out) const;
  /// The sums over later_duration_ns(j) for j in [begin, end), 1 <= begin < end, under the
  /// same condition: with AVX2, four steps an instruction (the same rounding, bit for bit).
  LaterStepSums later_sums(int64_t begin, int64_t end) const;
  /// The most steps k in [0, max_steps] from step 1 on whose durations sum to less than
  /// `total_ns` (durations as later_duration_ns, under its condition up to max_steps). From the
  /// unrounded sum in closed form, within half a nanosecond a step of the rounded one: the
  /// steps are summed only when `total_ns` falls within that margin of a step's end.
  int64_t later_steps_within(int64_t total_ns, int64_t max_steps) const;
};

/// StepSeries::later_steps_within for one series and max_steps, its closed form prepared once:
/// a replica's stretch is asked at every arrival (the routers read its load).
class LaterStepClock {
 public:
  LaterStepClock() = default;
  LaterStepClock(const StepSeries& steps, int64_t max_steps);
  /// steps.later_steps_within(total_ns, max_steps), `steps` the series prepared for.
  int64_t steps_within(const StepSeries& steps, int64_t total_ns) const;

 private:
  int64_t max_steps_ = 0;
  /// k steps sum to k p + q k (k + 1) / 2 before rounding (p = d0 1e9, q = slope 1e9); b and
  /// b^2 for the root; the margin bounds the rounding and floating-point error up to max_steps.
  double p_ = 0, q_ = 0, b_ = 0, b_sq_ = 0, margin_ = 0;
  bool closed_form_ = false;  ///< no step raised to 1 ns
};

}  // namespace servesim

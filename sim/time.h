#pragma once
/// Simulated time: an integer count of nanoseconds, so that event order never depends on
/// floating-point rounding. Cost models compute in double seconds and convert once.

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "sim/error.h"

namespace servesim {

/// Longest time a user may give (a duration, a start, a think time): about 31.7 years. Far
/// below the 146-year reach of Time::from_s, so sums of such times still convert and add.
inline constexpr double kMaxInputSeconds = 1e9;

struct Time {
  int64_t ns = 0;

  static constexpr Time from_ns(int64_t n) { return Time{n}; }
  /// Rounds to the nearest nanosecond, halves away from zero (as std::llround, inline: closed-form
  /// decode converts every step). Beyond +-2^62 ns (146 years), or not a number, it throws:
  /// inputs are bounded by kMaxInputSeconds, so only a bug gets here.
  static Time from_s(double s) {
    const double x = s * 1e9;
    if (!(std::fabs(x) < 0x1p62)) [[unlikely]]
      throw InvariantError(fmt::format("time of {} s is beyond the simulated horizon", s));
    return round_ns(x);
  }
  /// As from_s for `s` already known to be within the horizon (no check).
  static Time from_s_within_horizon(double s) { return round_ns(s * 1e9); }
  static constexpr Time max() { return Time{std::numeric_limits<int64_t>::max()}; }
  constexpr double to_s() const { return static_cast<double>(ns) * 1e-9; }
  constexpr double to_ms() const { return static_cast<double>(ns) * 1e-6; }

  friend constexpr auto operator<=>(Time, Time) = default;
  // Checked: a wrapped time would silently reorder events.
  friend constexpr Time operator+(Time a, Time b) {
    Time t;
    if (__builtin_add_overflow(a.ns, b.ns, &t.ns)) [[unlikely]]
      overflow(a, '+', b);
    return t;
  }
  friend constexpr Time operator-(Time a, Time b) {
    Time t;
    if (__builtin_sub_overflow(a.ns, b.ns, &t.ns)) [[unlikely]]
      overflow(a, '-', b);
    return t;
  }
  constexpr Time& operator+=(Time o) { return *this = *this + o; }

 private:
  static Time round_ns(double x) {
    // Below 2^62 the truncation is exact and so is x - whole: compare the fraction.
    // Branch-free: the direction of rounding is unpredictable, step after step.
    const auto whole = static_cast<int64_t>(x);
    const double fraction = x - static_cast<double>(whole);
    return Time{whole + static_cast<int64_t>(fraction >= 0.5) -
                static_cast<int64_t>(fraction <= -0.5)};
  }

  [[noreturn]] static void overflow(Time a, char op, Time b) {
    throw InvariantError(fmt::format("time overflow: {} ns {} {} ns", a.ns, op, b.ns));
  }
};

}  // namespace servesim

template <>
struct fmt::formatter<servesim::Time> : fmt::formatter<double> {
  template <typename Ctx>
  auto format(servesim::Time t, Ctx& ctx) const {
    auto out = fmt::formatter<double>::format(t.to_s(), ctx);
    return fmt::format_to(out, "s");
  }
};

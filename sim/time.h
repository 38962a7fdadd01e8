#pragma once
/// Simulated time: an integer count of nanoseconds, so that event order never depends on
/// floating-point rounding. Cost models compute in double seconds and convert once.

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <limits>

namespace servesim {

struct Time {
  int64_t ns = 0;

  static constexpr Time from_ns(int64_t n) { return Time{n}; }
  /// Rounds to the nearest nanosecond, halves away from zero (as std::llround, inline: closed-form
  /// decode converts every step). Callers pass finite durations.
  static Time from_s(double s) {
    const double x = s * 1e9;
    if (!(std::fabs(x) < 0x1p62)) return Time{static_cast<int64_t>(std::llround(x))};
    // Below 2^62 the truncation is exact and so is x - whole: compare the fraction.
    // Branch-free: the direction of rounding is unpredictable, step after step.
    const auto whole = static_cast<int64_t>(x);
    const double fraction = x - static_cast<double>(whole);
    return Time{whole + static_cast<int64_t>(fraction >= 0.5) -
                static_cast<int64_t>(fraction <= -0.5)};
  }
  static constexpr Time max() { return Time{std::numeric_limits<int64_t>::max()}; }
  constexpr double to_s() const { return static_cast<double>(ns) * 1e-9; }
  constexpr double to_ms() const { return static_cast<double>(ns) * 1e-6; }

  friend constexpr auto operator<=>(Time, Time) = default;
  friend constexpr Time operator+(Time a, Time b) { return Time{a.ns + b.ns}; }
  friend constexpr Time operator-(Time a, Time b) { return Time{a.ns - b.ns}; }
  constexpr Time& operator+=(Time o) {
    ns += o.ns;
    return *this;
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

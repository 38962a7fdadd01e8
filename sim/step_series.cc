#include "sim/step_series.h"

#include <cmath>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace servesim {
namespace {

#if defined(__x86_64__)
/// Below this a duration converts in a 32-bit lane, and so does its excess over the least.
constexpr int64_t kLaneLimitNs = int64_t{1} << 30;

/// Durations of a series four steps at a time. Each is the trunc of (d0 + slope j) 1e9 + 0.5,
/// the same operations as for_each_later in the same order (no fused multiply-add: the target
/// is AVX2 alone), and for 0.5 <= x < 2^30 the trunc of x + 0.5 is the whole part of x plus
/// one when its fraction is at least 0.5: x + 0.5 is exact unless it crosses a power of two,
/// an integer, which the rounding cannot pass.
struct FourSteps {
  __m256d d0, slope, scale, half, four;
  __m256d j;  ///< the next four steps
  __attribute__((target("avx2"), always_inline)) __m128i next() {
    const __m256d x = _mm256_mul_pd(_mm256_add_pd(d0, _mm256_mul_pd(slope, j)), scale);
    j = _mm256_add_pd(j, four);
    return _mm256_cvttpd_epi32(_mm256_add_pd(x, half));
  }
};

__attribute__((target("avx2"))) FourSteps four_steps_from(double d0, double slope, int64_t begin) {
  const auto first = static_cast<double>(begin);
  return {_mm256_set1_pd(d0),  _mm256_set1_pd(slope),
          _mm256_set1_pd(1e9), _mm256_set1_pd(0.5),
          _mm256_set1_pd(4.0), _mm256_setr_pd(first, first + 1, first + 2, first + 3)};
}

/// Adds duration - base and its square for j in [begin, end) four steps at a time, and returns
/// the first step left for the caller (fewer than four).
__attribute__((target("avx2"))) int64_t add_excess_avx2(double d0, double slope, int64_t begin,
                                                        int64_t end, int64_t base_ns, uint64_t& sum,
                                                        uint64_t& sum_sq) {
  struct Sums {
    __m256i acc, acc_sq;
    __attribute__((target("avx2"), always_inline)) void add(__m128i durations, __m128i base) {
      const __m256i excess = _mm256_cvtepu32_epi64(_mm_sub_epi32(durations, base));
      acc = _mm256_add_epi64(acc, excess);
      acc_sq = _mm256_add_epi64(acc_sq, _mm256_mul_epu32(excess, excess));
    }
  };
  FourSteps steps = four_steps_from(d0, slope, begin);
  const __m128i base = _mm_set1_epi32(static_cast<int32_t>(base_ns));
  // Eight steps a round, counted down, into two sums (the loop's own instructions, and the
  // copies one chain of sums makes the compiler add, would otherwise be a fifth of it).
  Sums first{_mm256_setzero_si256(), _mm256_setzero_si256()}, second = first;
  for (int64_t rounds = (end - begin) / 8; rounds > 0; --rounds) {
    first.add(steps.next(), base);
    second.add(steps.next(), base);
  }
  int64_t at = begin + (end - begin) / 8 * 8;
  Sums last = {_mm256_setzero_si256(), _mm256_setzero_si256()};
  if (end - at >= 4) {
    last.add(steps.next(), base);
    at += 4;
  }
  const __m256i acc = _mm256_add_epi64(_mm256_add_epi64(first.acc, second.acc), last.acc);
  const __m256i acc_sq =
      _mm256_add_epi64(_mm256_add_epi64(first.acc_sq, second.acc_sq), last.acc_sq);
  alignas(32) uint64_t lanes[4], lanes_sq[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc);
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes_sq), acc_sq);
  sum += lanes[0] + lanes[1] + lanes[2] + lanes[3];
  sum_sq += lanes_sq[0] + lanes_sq[1] + lanes_sq[2] + lanes_sq[3];
  return at;
}

/// Writes the durations of steps [begin, end) to `out`, four at a time, and returns the first step
/// left for the caller (fewer than four).
__attribute__((target("avx2"))) int64_t write_durations_avx2(double d0, double slope, int64_t begin,
                                                             int64_t end, int32_t* out) {
  FourSteps steps = four_steps_from(d0, slope, begin);
  int64_t at = begin;
  for (; end - at >= 4; at += 4, out += 4)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), steps.next());
  return at;
}

bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
#endif

}  // namespace

LaterStepSums StepSeries::later_sums(int64_t begin, int64_t end) const {
  LaterStepSums out;
  out.steps = end - begin;
  if (out.steps <= 0) return out;
  const int64_t at_begin = later_duration_ns(begin), at_end = later_duration_ns(end - 1);
  out.base_ns = std::min(at_begin, at_end);
  const int64_t highest = std::max(at_begin, at_end);
  const auto spread = static_cast<uint64_t>(highest - out.base_ns);
  uint64_t bound = 0;
  out.squares_exact = out.base_ns >= 0 && highest < (int64_t{1} << 40) &&
                      !__builtin_mul_overflow(spread, spread, &bound) &&
                      !__builtin_mul_overflow(bound, static_cast<uint64_t>(out.steps), &bound);
  if (!out.squares_exact) {
    for_each_later(begin, end, [&](int64_t v) { out.sum_ns += v; });
    return out;
  }
  int64_t at = begin;
#if defined(__x86_64__)
  // Lanes hold no raise to 1 ns (both ends at least half a nanosecond before rounding).
  const auto unrounded = [&](int64_t j) { return (d0_s + slope_s * static_cast<double>(j)) * 1e9; };
  if (out.steps >= 8 && highest < kLaneLimitNs && unrounded(begin) >= 0.5 &&
      unrounded(end - 1) >= 0.5 && has_avx2())
    at = add_excess_avx2(d0_s, slope_s, begin, end, out.base_ns, out.excess_sum_ns,
                         out.excess_sq_sum);
#endif
  uint64_t sum = 0, sum_sq = 0;
  for_each_later(at, end, [&](int64_t v) {
    const auto w = static_cast<uint64_t>(v - out.base_ns);
    sum += w;
    sum_sq += w * w;
  });
  out.excess_sum_ns += sum;
  out.excess_sq_sum += sum_sq;
  out.sum_ns = out.base_ns * out.steps + static_cast<int64_t>(out.excess_sum_ns);
  return out;
}

bool StepSeries::later_durations(int64_t begin, int64_t end, int32_t* out) const {
#if defined(__x86_64__)
  const auto unrounded = [&](int64_t j) { return (d0_s + slope_s * static_cast<double>(j)) * 1e9; };
  if (end - begin < 8 || unrounded(begin) < 0.5 || unrounded(end - 1) < 0.5 ||
      std::max(later_duration_ns(begin), later_duration_ns(end - 1)) >= kLaneLimitNs || !has_avx2())
    return false;
  const int64_t at = write_durations_avx2(d0_s, slope_s, begin, end, out);
  out += at - begin;
  for_each_later(at, end, [&](int64_t v) { *out++ = static_cast<int32_t>(v); });
  return true;
#else
  (void)begin, (void)end, (void)out;
  return false;
#endif
}

int64_t StepSeries::later_steps_within(int64_t total_ns, int64_t max_steps) const {
  return LaterStepClock(*this, max_steps).steps_within(*this, total_ns);
}

LaterStepClock::LaterStepClock(const StepSeries& steps, int64_t max_steps) : max_steps_(max_steps) {
  if (max_steps <= 0) return;
  // Step j's duration is x_j = (d0 + slope j) 1e9 rounded, within half a nanosecond, so k
  // steps sum to the closed form within k / 2 ns, plus floating-point error far below the
  // margin's last term. Only when no step is raised to 1 ns.
  const auto unrounded = [&](int64_t j) {
    return (steps.d0_s + steps.slope_s * static_cast<double>(j)) * 1e9;
  };
  closed_form_ = unrounded(1) >= 0.5 && unrounded(max_steps) >= 0.5;
  p_ = steps.d0_s * 1e9;
  q_ = steps.slope_s * 1e9;
  b_ = p_ + 0.5 * q_;
  b_sq_ = b_ * b_;
  const auto n = static_cast<double>(max_steps);
  margin_ = 0.5 * n + 4 + (std::fabs(p_) + std::fabs(q_) * n) * n * 0x1p-40;
}

int64_t LaterStepClock::steps_within(const StepSeries& steps, int64_t total_ns) const {
  if (max_steps_ <= 0 || total_ns <= 0) return 0;
  int64_t k = 0;
  if (closed_form_) {
    // The root of q k^2 / 2 + (p + q / 2) k = total, in the form that does not cancel.
    const auto total = static_cast<double>(total_ns);
    double estimate = 2 * total / (b_ + std::sqrt(std::max(0.0, b_sq_ + 2 * q_ * total)));
    if (!(estimate >= 0)) estimate = 0;  // and not a number
    k = static_cast<int64_t>(std::min(estimate, static_cast<double>(max_steps_)));
    const auto n = static_cast<double>(k);
    const double sum_k = n * (p_ + q_ * (n + 1) * 0.5), sum_next = sum_k + p_ + q_ * (n + 1);
    if ((k == 0 || sum_k < total - margin_) && (k == max_steps_ || sum_next >= total + margin_))
      return k;
  }
  // Near a step's end (or steps raised to 1 ns): sum the steps exactly, from the estimate on.
  int64_t sum = k == 0 ? 0 : steps.later_sums(1, k + 1).sum_ns;
  while (k > 0 && sum >= total_ns) sum -= steps.later_duration_ns(k--);
  while (k < max_steps_ && sum + steps.later_duration_ns(k + 1) < total_ns)
    sum += steps.later_duration_ns(++k);
  return k;
}

}  // namespace servesim

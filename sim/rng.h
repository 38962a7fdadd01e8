#pragma once
/// Seeded random streams named by purpose ("arrivals", "lengths", "predictor"). Each stream is
/// derived from (seed, name), so adding a stream never shifts the draws of another. The
/// distributions are written out here rather than taken from <random>, whose distribution
/// algorithms differ between standard libraries: same seed, same numbers, on any platform.

#include <cstdint>
#include <string_view>

namespace servesim {

class Rng {
 public:
  Rng(uint64_t seed, std::string_view stream_name);
  uint64_t next_u64();
  /// Uniform on [0, 1) with 53 random bits.
  double uniform();
  double exponential(double rate);
  double normal(double mean, double stddev);
  double lognormal(double mu, double sigma);
  /// Gamma of shape k > 0 and scale theta (mean k * theta), by Marsaglia and Tsang's method;
  /// a shape below 1 is boosted to k + 1 and scaled by U^(1/k).
  double gamma(double shape, double scale);
  /// Uniform integer in [lo, hi].
  int64_t uniform_int(int64_t lo, int64_t hi);

 private:
  uint64_t state_[4];
  double spare_normal_ = 0;
  bool has_spare_ = false;
};

}  // namespace servesim

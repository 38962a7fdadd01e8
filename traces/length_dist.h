#pragma once
/// Token-count distributions for synthetic workloads, as a scenario writes them:
///
///   2048  or  {"fixed": 2048}                  always that many tokens
///   {"uniform": [lo, hi]}                       an integer in [lo, hi], both ends included
///   {"lognormal": [mu, sigma], "min": 1, "max": 32768}
///                                               round(exp(N(mu, sigma))) clamped to [min, max];
///                                               min defaults to 1, max to no clamp
///   {"empirical": "lengths.csv", "column": "num_prefill_tokens"}
///                                               the value of a row drawn uniformly from the
///                                               CSV; the column is read once, at start
///
/// Every length drawn is at least 1: fixed, uniform and lognormal bounds are checked to be
/// >= 1, and a 0 in an empirical column becomes 1 (a request needs a prompt, and yields at
/// least one token).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/json_reader.h"
#include "sim/rng.h"

namespace servesim {

struct LengthDist {
  enum class Kind : uint8_t { kFixed, kUniform, kLognormal, kEmpirical };
  Kind kind = Kind::kFixed;
  /// kFixed uses lo_tokens; kUniform draws from [lo_tokens, hi_tokens]; kLognormal clamps to
  /// [lo_tokens, hi_tokens] (hi_tokens = kMaxRequestTokens when no "max" is given).
  int64_t lo_tokens = 1;
  int64_t hi_tokens = 1;
  double mu = 0;
  double sigma = 0;
  /// kEmpirical: the resolved CSV path and the column to sample.
  std::string path;
  std::string column;
};

/// Reads a distribution (a plain integer means fixed). `base_dir` resolves an empirical path.
/// Rejects unknown keys and an object naming zero or several kinds.
LengthDist parse_length_dist(const JsonValue& value, const std::string& base_dir);

/// The integer `columns` of a CSV with a header line, one value per data row each. Throws
/// InputError "PATH:LINE: COLUMN: ..." on a value that is not a non-negative integer.
std::vector<std::vector<int64_t>> read_csv_columns(const std::string& path,
                                                   const std::vector<std::string>& columns);

/// Draws (prompt, output) length pairs. Input and output lengths come from separate RNG
/// streams, "input_lengths" and "output_lengths", so changing one distribution leaves the other
/// sequence unchanged. When both are empirical over the same file, one row is drawn (from
/// "input_lengths") and both lengths are taken from it, keeping the dataset's correlation
/// between prompt and answer length.
class LengthSampler {
 public:
  LengthSampler(LengthDist input, LengthDist output, uint64_t seed);
  struct Draw {
    int64_t prompt_tokens;
    int64_t output_tokens;
  };
  Draw draw();
  bool paired() const { return paired_; }

 private:
  static int64_t sample(const LengthDist& dist, const std::vector<int64_t>& values, Rng& rng);

  LengthDist input_;
  LengthDist output_;
  std::vector<int64_t> input_values_;
  std::vector<int64_t> output_values_;
  bool paired_ = false;
  Rng input_rng_;
  Rng output_rng_;
};

}  // namespace servesim

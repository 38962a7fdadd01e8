#pragma once
/// Output-length predictors: what the router believes a request will generate. Only `oracle`
/// knows the truth; the others are what a deployed router could do.

#include <memory>
#include <string_view>

#include "models/request.h"
#include "sim/json_reader.h"
#include "sim/registry.h"
#include "sim/rng.h"

namespace servesim {

class OutputPredictor {
 public:
  virtual ~OutputPredictor() = default;
  virtual std::string_view name() const = 0;
  virtual int64_t predict(const RequestSpec& spec) = 0;
};

/// The true output length (seed Q11's "unrealistic" assumption).
class OraclePredictor final : public OutputPredictor {
 public:
  std::string_view name() const override { return "oracle"; }
  int64_t predict(const RequestSpec& spec) override { return spec.output_tokens; }
};

/// Nothing is known of the output: the class follows from the prompt alone (predicts 0).
class PromptOnlyPredictor final : public OutputPredictor {
 public:
  std::string_view name() const override { return "prompt_only"; }
  int64_t predict(const RequestSpec&) override { return 0; }
};

/// The true length times lognormal error exp(N(0, sigma)): a learned predictor of given
/// quality. Seeded from the run's seed and the stream "predictor".
class NoisyPredictor final : public OutputPredictor {
 public:
  NoisyPredictor(double sigma, uint64_t seed) : sigma_(sigma), rng_(seed, "predictor") {}
  std::string_view name() const override { return "noisy"; }
  int64_t predict(const RequestSpec& spec) override;

 private:
  double sigma_;
  Rng rng_;
};

/// Factories read their settings from the router's object (/policies/router).
using PredictorRegistry = Registry<OutputPredictor, JsonObject&, uint64_t /*seed*/>;
void register_builtin_predictors(PredictorRegistry& registry);

}  // namespace servesim

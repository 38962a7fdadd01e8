#include "policies/predictor.h"

#include <cmath>

#include "models/request.h"

namespace servesim {

int64_t NoisyPredictor::predict(const RequestSpec& spec) {
  const double guess = static_cast<double>(spec.output_tokens) * rng_.lognormal(0.0, sigma_);
  // A wide noise_sigma draws guesses past any int64 (or infinite): clamp before converting.
  if (!(guess < static_cast<double>(kMaxRequestTokens))) return kMaxRequestTokens;
  return std::max<int64_t>(1, std::llround(guess));
}

void register_builtin_predictors(PredictorRegistry& registry) {
  registry.add("oracle", "the true output length",
               [](JsonObject&, uint64_t) { return std::make_unique<OraclePredictor>(); });
  registry.add("prompt_only", "output unknown (predicts 0): class from prompt length alone",
               [](JsonObject&, uint64_t) { return std::make_unique<PromptOnlyPredictor>(); });
  registry.add("noisy", "true length x lognormal error (router key: noise_sigma)",
               [](JsonObject& router, uint64_t seed) {
                 return std::make_unique<NoisyPredictor>(
                     router.at("noise_sigma").nonnegative_double(), seed);
               },
               {"noise_sigma"});
}

}  // namespace servesim

#include "sim/latency_values.h"

#include <algorithm>
#include <cmath>

#include "sim/stats.h"

namespace servesim {

void LatencyValues::CompensatedSum::add(long double x) {
  const long double t = sum + x;
  if (std::fabs(sum) >= std::fabs(x))
    compensation += (sum - t) + x;
  else
    compensation += (x - t) + sum;
  sum = t;
}

void LatencyValues::grow() {
  constexpr size_t kFirstRoom = 256;
  values_.reserve(std::min(std::max(kFirstRoom, 2 * values_.capacity()), exact_samples_ + 1));
}

void LatencyValues::to_sketch() {
  shift_ms_ = values_.front();
  sketched_ = true;
  for (double v : values_) add_to_sketch(v);
  HugePageVector<double>().swap(values_);  // clear() would keep the memory
}

void LatencyValues::add_to_sketch(double value_ms) {
  sketch_.add(value_ms);
  const long double d = static_cast<long double>(value_ms) - shift_ms_;
  sum_.add(d);
  sum_sq_.add(d * d);
}

bool LatencyValues::add_summary(nlohmann::ordered_json& out, const std::string& name) {
  if (!sketched_) {
    add_latency_summary(out, name, values_);
    return true;
  }
  const auto n = static_cast<long double>(count_);
  const long double mean_shifted = sum_.value() / n;
  const long double var = std::max(0.0L, sum_sq_.value() / n - mean_shifted * mean_shifted);
  write_latency_entries(out, name, static_cast<double>(shift_ms_ + mean_shifted),
                        static_cast<double>(std::sqrt(var)),
                        [&](double p) { return sketch_.percentile(p); });
  return false;
}

}  // namespace servesim

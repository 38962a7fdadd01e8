// Evaluation of the fitted kernel-time forms documented in models/kernel_fit.h. The same
// formulas are fitted by tools/fit_kernels.py (gemm_pred and the linear designs there).

#include <algorithm>
#include <cmath>

#include "models/kernel_fit.h"

namespace servesim {

double gemm_time_s(const GemmFit& fit, double peak_flops_per_s, double hbm_bytes_per_s, double m,
                   double n, double k, double bytes_per_element) {
  if (m <= 0 || n <= 0 || k <= 0) return 0;
  // 2mnk / (peak * ce * m / (m + m_half)) == 2nk (m + m_half) / (peak * ce): finite at small m.
  const double compute =
      2.0 * n * k * (m + fit.m_half) / (peak_flops_per_s * fit.compute_efficiency);
  const double memory =
      (m * k + k * n + m * n) * bytes_per_element / (hbm_bytes_per_s * fit.memory_efficiency);
  const double extra_pass = fit.extra_mk_bytes * m * k / hbm_bytes_per_s;
  return fit.overhead_s + std::max(compute, memory) + extra_pass;
}

double decode_attention_time_s(const AttentionFit& fit, double hbm_bytes_per_s, double batch,
                               double kv_bytes_read) {
  if (batch <= 0) return 0;
  return fit.decode_overhead_s + batch * fit.decode_per_request_s +
         kv_bytes_read / (hbm_bytes_per_s * fit.decode_memory_efficiency);
}

double prefill_attention_time_s(const AttentionFit& fit, double peak_flops_per_s, double flops) {
  if (flops <= 0) return 0;
  return fit.prefill_overhead_s + flops / (peak_flops_per_s * fit.prefill_compute_efficiency);
}

double allreduce_time_s(const AllReduceFit& fit, double bytes, AllReduceSegmentLogs* memo) {
  if (bytes <= 0) return 0;
  if (fit.measured_points >= 2) {
    const AllReducePoint* p = fit.measured;
    const int last = fit.measured_points - 1;
    if (bytes <= p[0].bytes) return p[0].seconds;
    if (bytes >= p[last].bytes) {
      const double seconds_per_byte =
          (p[last].seconds - p[last - 1].seconds) / (p[last].bytes - p[last - 1].bytes);
      return p[last].seconds + (bytes - p[last].bytes) * std::max(seconds_per_byte, 0.0);
    }
    int i = 1;
    while (p[i].bytes < bytes) ++i;
    AllReduceSegmentLogs local;
    AllReduceSegmentLogs& logs = memo ? *memo : local;
    if (logs.lower != &p[i - 1]) {
      logs = {&p[i - 1], std::log(p[i].bytes / p[i - 1].bytes), std::log(p[i - 1].seconds),
              std::log(p[i].seconds)};
    }
    const double w = std::log(bytes / p[i - 1].bytes) / logs.log_bytes_ratio;
    return std::exp((1 - w) * logs.log_lower_seconds + w * logs.log_upper_seconds);
  }
  if (fit.bus_bandwidth_bytes_per_s <= 0) return fit.latency_s;
  return fit.latency_s + bytes / fit.bus_bandwidth_bytes_per_s;
}

}  // namespace servesim

#pragma once
/// Per-GPU kernel-time models fitted to measured kernel latencies (tools/fit_kernels.py over
/// ../shared/data/kernels/aiconfigurator). The forms are compact and physically shaped so that
/// they extrapolate sanely: a roofline with fitted efficiencies plus a fixed launch cost.
///
/// Decode attention is linear in the KV bytes read, by construction: between two batch changes
/// the decode cost is then an arithmetic series in the step count, which the instance sums in
/// closed form instead of stepping token by token.

#include <string_view>

namespace servesim {

/// GEMM (m x k) . (k x n), m the tokens, with bpe bytes per operand element:
///   overhead_s + max(2mnk / (peak * compute_efficiency * m / (m + m_half)),
///                    (mk + kn + mn) * bpe / (hbm * memory_efficiency))
///              + extra_mk_bytes * m * k / hbm
/// The last term is a separate pass over the activations outside the GEMM kernel: vLLM's fp8
/// path quantizes the bf16 activations per call (read 2 B, write 1 B per element plus a launch
/// and a reduction). It is fitted for fp8 only; bf16 GEMMs have none (0).
struct GemmFit {
  double overhead_s = 0;          ///< fixed launch + tail cost per GEMM
  double compute_efficiency = 1;  ///< achieved fraction of peak dense flops at large m
  double m_half = 0;              ///< m (tokens) at which compute rate reaches half of that
  double memory_efficiency = 1;   ///< achieved fraction of HBM bandwidth on weight-bound GEMMs
  double extra_mk_bytes = 0;      ///< bytes per activation element of a pass outside the GEMM
};

struct AttentionFit {
  // decode: overhead_s + batch * per_request_s + kv_bytes_read / (hbm_bw * memory_efficiency)
  double decode_overhead_s = 0;
  double decode_per_request_s = 0;
  double decode_memory_efficiency = 1;
  // prefill: overhead_s + attention_flops / (peak_flops * compute_efficiency), with causal
  // attention_flops = batch * 2 * 2 * num_heads * head_dim * isl^2 / 2 (QK^T and PV, 2 flops
  // per multiply-add, half the (query, key) pairs under the causal mask); peak = dense bf16.
  double prefill_overhead_s = 0;
  double prefill_compute_efficiency = 1;
};

/// One measured all-reduce point: the message each GPU contributes and the time it took.
struct AllReducePoint {
  double bytes = 0;
  double seconds = 0;
};

/// All-reduce over `n` GPUs of one node. `measured` holds, per message size, the faster of NCCL
/// and vLLM's custom all-reduce under CUDA graphs, as an engine that picks its backend per size
/// runs it; times between two points are interpolated in log-log space (the curve bends between
/// its latency floor and its bandwidth slope, where any straight line is 20-35% off at the
/// decode sizes of 100 kB-1 MB), below the first point they are the first point's time, past the
/// last they grow at the last segment's bandwidth. The line latency_s + bytes /
/// bus_bandwidth_bytes_per_s is the fitted summary (bandwidth with the ring factor 2(n-1)/n
/// folded in: nccl-tests' busbw = it * 2(n-1)/n), used when no points were measured.
struct AllReduceFit {
  double latency_s = 0;
  double bus_bandwidth_bytes_per_s = 0;      ///< 0 = not fitted for this n
  const AllReducePoint* measured = nullptr;  ///< ascending bytes; null = use the line
  int measured_points = 0;
};

struct GpuKernelFit {
  std::string_view gpu;  ///< catalogue name, e.g. "H100-SXM"
  GemmFit gemm_bf16;
  GemmFit gemm_fp8;
  AttentionFit attention_bf16_kv;
  AllReduceFit allreduce[4];  ///< n = 2, 4, 8 at indices 1, 2, 3 (index 0 unused)
};

/// Pure evaluation of the forms above (models/kernel_fit_eval.cc). Times in seconds.
double gemm_time_s(const GemmFit& fit, double peak_flops_per_s, double hbm_bytes_per_s, double m,
                   double n, double k, double bytes_per_element);
double decode_attention_time_s(const AttentionFit& fit, double hbm_bytes_per_s, double batch,
                               double kv_bytes_read);
double prefill_attention_time_s(const AttentionFit& fit, double peak_flops_per_s, double flops);
/// The logs of the measured segment an all-reduce time was last interpolated on, so that the
/// next time on the same segment takes one logarithm instead of four (same arithmetic, same
/// result).
struct AllReduceSegmentLogs {
  const AllReducePoint* lower = nullptr;  ///< the segment's first point; null = none yet
  double log_bytes_ratio = 0;             ///< log(upper bytes / lower bytes)
  double log_lower_seconds = 0;
  double log_upper_seconds = 0;
};
/// The measured curve when there is one, else the line; latency_s alone when neither (not
/// fitted for this n). `memo`, when given, keeps the logs of the segment used.
double allreduce_time_s(const AllReduceFit& fit, double bytes,
                        AllReduceSegmentLogs* memo = nullptr);

/// The fitted models for a catalogue GPU, or nullptr when none was fitted (the cost model then
/// uses the plain roofline with default efficiencies).
const GpuKernelFit* find_kernel_fit(std::string_view gpu_name);

}  // namespace servesim

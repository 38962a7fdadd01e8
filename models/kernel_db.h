#pragma once
/// Kernel times interpolated directly from a measured-kernel database: one GPU folder in the
/// aiconfigurator layout (e.g. ../shared/data/kernels/aiconfigurator/h100_sxm), holding
///   gemm/FRAMEWORK/VERSION/gemm_perf.csv
///   attention/FRAMEWORK/VERSION/{context,generation}_attention_perf.csv
///   comm/nccl/VERSION/nccl_perf.csv, comm/vllm/VERSION/custom_allreduce_perf.csv (optional)
/// The newest version folder of each is used. This is the optional alternative to the fitted
/// closed forms of models/kernel_fit.h (`"kernel_db"` in a scenario, `--kernel-db DIR`): it
/// follows every measured wrinkle of the kernels (tile quantization, split-k switches) at the
/// price of extrapolating only crudely outside the measured grid.
///
/// Interpolation is multilinear in log(time) over log coordinates: exact on grid points, exact
/// for power laws between them (time ∝ k for a compute-bound GEMM, flat for a launch-bound one).
/// Beyond the largest measured value of a coordinate the time grows in proportion to it (the
/// large end of every table is throughput-bound: GEMM time ∝ m n k, attention time ∝ batch x
/// context, all-reduce time ∝ bytes); below the smallest it is held at the edge (launch-bound).
/// Latencies in the tables are milliseconds; every method returns seconds.

#include <array>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "models/dtype.h"

namespace servesim {

class KernelDb {
 public:
  /// Reads the tables under `dir`. Throws InputError with a one-line message, without a file
  /// prefix for a missing table ("no gemm_perf.csv under DIR") so the caller can name the
  /// scenario key or flag, and with FILE:LINE for a row that does not parse.
  static KernelDb load(const std::filesystem::path& dir);
  /// The same, loaded once per canonical directory per process: sweeps and multi-replica runs
  /// share one copy (the GEMM table alone is ~100k rows).
  static std::shared_ptr<const KernelDb> load_shared(const std::filesystem::path& dir);

  /// GEMM tables are measured for bf16 and fp8 weights with 16-bit activations; fp16 is priced
  /// as bf16 (same tensor-core rate). Weight-only formats (int8/int4 with bf16 activations) are
  /// not in the tables: the caller keeps its own model for them.
  bool supports_gemm(DType weights, DType activations) const;
  /// (m x k) . (k x n) with m the tokens; `dtype` bf16/fp16 or fp8 (supports_gemm).
  double gemm_time_s(double m, double n, double k, DType dtype) const;

  /// KV formats with a decode table: bf16 (fp16 priced as bf16) and fp8.
  bool supports_kv(DType kv) const;
  /// One decode step of `batch` requests each attending over `context_tokens`, per layer and
  /// GPU, with the heads one GPU holds. A head configuration absent from the table takes the
  /// nearest measured one (KV bytes per token first, then query heads) scaled by the ratio of
  /// KV bytes per token: decode attention is bound by reading the cache.
  double decode_attention_time_s(double batch, double context_tokens, int num_heads,
                                 int num_kv_heads, int head_dim, DType kv) const;
  /// Causal prefill of `batch` prompts of `isl` tokens (bf16 KV rows). An absent head
  /// configuration takes the nearest measured one scaled by the ratio of query heads x head_dim
  /// (prefill attention is bound by its flops, which scale with them).
  double prefill_attention_time_s(double batch, double isl, int num_heads, int num_kv_heads,
                                  int head_dim) const;

  /// True when all-reduce over `n_gpus` was measured (NCCL or vLLM custom all-reduce).
  bool has_allreduce(int n_gpus) const;
  /// The faster of NCCL all_reduce (fp16 rows) and vLLM's custom all-reduce (CUDA-graph
  /// backend) at this size; `bytes` is the message each GPU contributes (2 bytes per element).
  double allreduce_time_s(int n_gpus, double bytes) const;

  /// The `device` column of the GEMM table, e.g. "NVIDIA H100 80GB HBM3".
  const std::string& device() const { return device_; }
  /// Whether these tables were measured on `gpu_name` (a catalogue-style name such as
  /// "H100-SXM" or "A100-SXM-40" of `memory_bytes`): the device names the GPU's model
  /// ("H100", "A100", "L40S", "4090") and, when it states a memory size, the same one.
  bool measured_on(std::string_view gpu_name, double memory_bytes) const;
  /// The files read, in the order above.
  const std::vector<std::filesystem::path>& sources() const { return sources_; }

  /// One measured curve: time at increasing x, interpolated log-log (see the file comment).
  struct Line {
    std::vector<double> x, ms;
  };
  /// Curves over the innermost coordinate, one per value of the outer coordinates.
  struct Grid2 {
    std::vector<double> outer;  ///< sorted
    std::vector<Line> lines;    ///< lines[i] at outer[i]
  };
  struct Grid3 {
    std::vector<double> a, b;  ///< sorted outer coordinates (GEMM: m, n)
    std::vector<Line> lines;   ///< lines[ia * b.size() + ib], over the inner coordinate (k)
  };
  /// (num_heads, num_kv_heads, head_dim, kv bytes per element)
  using HeadKey = std::tuple<int, int, int, int>;

 private:
  std::string device_;
  std::vector<std::filesystem::path> sources_;
  Grid3 gemm_bf16_, gemm_fp8_;
  std::map<HeadKey, Grid2> decode_, prefill_;
  std::map<int, Line> nccl_, custom_;
};

}  // namespace servesim

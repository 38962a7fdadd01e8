#pragma once
/// GPU specifications: the built-in catalogue and custom types declared in a scenario.

#include <string>
#include <string_view>
#include <vector>

#include "models/dtype.h"

namespace servesim {

struct GpuSpec {
  std::string name;
  double memory_bytes = 0;
  double hbm_bandwidth_bytes_per_s = 0;
  double bf16_flops_per_s = 0;              ///< dense tensor-core peak
  double fp8_flops_per_s = 0;               ///< 0: no native FP8 (weights are dequantized to bf16)
  double int8_ops_per_s = 0;                ///< 0: no native INT8 tensor ops
  double nvlink_bandwidth_bytes_per_s = 0;  ///< per direction; 0: no NVLink
  double pcie_bandwidth_bytes_per_s = 0;    ///< per direction
  double tdp_w = 0;  ///< board power limit; 0: unknown (no power or energy is reported)

  /// Peak dense rate of a GEMM whose inputs are in `d`. A format without native support runs
  /// at the bf16 rate (weights are dequantized in the kernel), which is what weight-only
  /// int8/int4 kernels do in practice.
  double peak_flops_per_s(DType d) const;
  /// Whether `d` has native tensor-core support; false means a dequantization cost is paid.
  bool native(DType d) const;
};

/// The built-in catalogue, figures from ../shared/data/hardware/gpus.csv.
const std::vector<GpuSpec>& gpu_catalogue();
const GpuSpec* find_gpu(std::string_view name);

}  // namespace servesim

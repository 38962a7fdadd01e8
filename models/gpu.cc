#include "models/gpu.h"

namespace servesim {

double GpuSpec::peak_flops_per_s(DType d) const {
  switch (d) {
    case DType::kFp8:
      return fp8_flops_per_s > 0 ? fp8_flops_per_s : bf16_flops_per_s;
    case DType::kInt8:
      return int8_ops_per_s > 0 ? int8_ops_per_s : bf16_flops_per_s;
    default:
      return bf16_flops_per_s;
  }
}

bool GpuSpec::native(DType d) const {
  switch (d) {
    case DType::kFp8:
      return fp8_flops_per_s > 0;
    case DType::kInt8:
      return int8_ops_per_s > 0;
    case DType::kInt4:
      return false;  // no dense int4 tensor-core GEMM on these parts: dequantized to bf16
    case DType::kFp4:
      // No FP4 rate in the catalogue: dequantized to bf16 in the kernel, as Hopper runs MXFP4
      // (Blackwell's FP4 tensor cores are not modelled: its FP4 GEMMs are priced slower).
      return false;
    default:
      return true;
  }
}

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kGB = 1e9;
constexpr double kT = 1e12;

}  // namespace

// Source: ../shared/data/hardware/gpus.csv (NVIDIA datasheets; dense, not sparse, figures).
// Bandwidths are per direction. Memory is the total CUDA reports (cudaMemGetInfo, PyTorch's
// "GPU 0 has a total capacity of ..." in its out-of-memory errors), which is what the engines
// size their KV caches from: a few hundred MiB less than nvidia-smi shows (81,559 MiB on an
// "80GB" H100), the driver's own. As PyTorch and vLLM report them in public logs: A100 40GB
// 39.59 GiB, A100 80GB 79.15, H100 80GB HBM3 79.18 (vLLM's profiling log in
// vllm-project/vllm PR 10511: 79.22), H200 139.81, L4 22.03, L40S 44.39, T4 14.75, RTX 4090
// 23.52.
const std::vector<GpuSpec>& gpu_catalogue() {
  static const std::vector<GpuSpec> catalogue = {
      // name, memory, HBM bw, bf16, fp8, int8, NVLink/dir, PCIe/dir, TDP (W)
      {"A100-SXM-40", 39.59 * kGiB, 1555 * kGB, 312 * kT, 0, 624 * kT, 300 * kGB, 32 * kGB, 400},
      {"A100-SXM-80", 79.15 * kGiB, 2039 * kGB, 312 * kT, 0, 624 * kT, 300 * kGB, 32 * kGB, 400},
      {"H100-SXM", 79.18 * kGiB, 3350 * kGB, 989 * kT, 1979 * kT, 1979 * kT, 450 * kGB, 64 * kGB,
       700},
      {"H200", 139.81 * kGiB, 4800 * kGB, 989 * kT, 1979 * kT, 1979 * kT, 450 * kGB, 64 * kGB, 700},
      {"L4", 22.03 * kGiB, 300 * kGB, 121 * kT, 242 * kT, 242 * kT, 0, 32 * kGB, 72},
      {"L40S", 44.39 * kGiB, 864 * kGB, 362 * kT, 733 * kT, 733 * kT, 0, 32 * kGB, 350},
      {"T4", 14.75 * kGiB, 320 * kGB, 65 * kT, 0, 130 * kT, 0, 16 * kGB, 70},
      // fp16 tensor rate with fp32 accumulate, as inference kernels use.
      {"RTX-4090", 23.52 * kGiB, 1008 * kGB, 165.2 * kT, 330.3 * kT, 660.6 * kT, 0, 32 * kGB, 450},
  };
  return catalogue;
}

const GpuSpec* find_gpu(std::string_view name) {
  for (const auto& g : gpu_catalogue())
    if (g.name == name) return &g;
  return nullptr;
}

}  // namespace servesim

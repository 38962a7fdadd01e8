#pragma once
/// Numeric formats of weights, KV cache and activations.

#include <optional>
#include <string_view>

namespace servesim {

/// kFp4 is MXFP4 (e2m1 values, one e8m0 scale per 32: 4.25 bits an element, scales counted),
/// the format gpt-oss ships its experts in.
enum class DType { kFp16, kBf16, kFp8, kInt8, kInt4, kFp4 };

constexpr double bytes_per_element(DType d) {
  switch (d) {
    case DType::kFp16:
    case DType::kBf16:
      return 2.0;
    case DType::kFp8:
    case DType::kInt8:
      return 1.0;
    case DType::kInt4:
      return 0.5;
    case DType::kFp4:
      return 4.25 / 8;
  }
  return 2.0;
}

std::string_view dtype_name(DType d);
std::optional<DType> parse_dtype(std::string_view name);
inline constexpr std::string_view kDTypeNames = "fp16, bf16, fp8, int8, int4, fp4";

}  // namespace servesim

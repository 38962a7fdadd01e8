#include "models/dtype.h"

namespace servesim {

std::string_view dtype_name(DType d) {
  switch (d) {
    case DType::kFp16:
      return "fp16";
    case DType::kBf16:
      return "bf16";
    case DType::kFp8:
      return "fp8";
    case DType::kInt8:
      return "int8";
    case DType::kInt4:
      return "int4";
    case DType::kFp4:
      return "fp4";
  }
  return "?";
}

std::optional<DType> parse_dtype(std::string_view name) {
  for (DType d : {DType::kFp16, DType::kBf16, DType::kFp8, DType::kInt8, DType::kInt4, DType::kFp4})
    if (dtype_name(d) == name) return d;
  return std::nullopt;
}

}  // namespace servesim

#include "run/scenario_hash.h"

#include <fmt/format.h>

#include <cstdint>

namespace servesim {

std::string scenario_hash(const nlohmann::json& scenario) {
  constexpr uint64_t kOffsetBasis = 14695981039346656037ull;
  constexpr uint64_t kPrime = 1099511628211ull;
  uint64_t h = kOffsetBasis;
  // Replacing bytes that are not UTF-8 rather than throwing; the loaders admit none, and
  // valid text hashes as before.
  for (const char c : scenario.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)) {
    h ^= static_cast<unsigned char>(c);
    h *= kPrime;
  }
  return fmt::format("{:016x}", h);
}

}  // namespace servesim

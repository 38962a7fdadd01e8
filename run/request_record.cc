#include "run/request_record.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace servesim {

void RecordText::grow(size_t bytes) {
  // Room for a typical record (~300 bytes) at once, doubled when a long name needs more.
  out_.resize(std::max({used_ + bytes, out_.size() * 2, used_ + 512}));
}

char* RecordText::put(char* p, uint64_t value) {
  return std::to_chars(p, p + 20, value).ptr;
}

char* RecordText::put(char* p, int64_t value) {
  return std::to_chars(p, p + 20, value).ptr;
}

char* RecordText::put(char* p, double value) {
  // Laid out as nlohmann lays out a double, as the rest of the result is (run/json_text.h).
  static_assert(kNumberRoom >= kJsonDoubleMaxChars);
  return write_json_double(p, value);
}

char* RecordText::put_decimal(char* p, int64_t units, int scale, double value) {
  return write_json_decimal(p, units, scale, value);
}

std::string quoted_json_string(std::string_view text) {
  return nlohmann::ordered_json(text).dump(-1, ' ', false,
                                           nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace servesim

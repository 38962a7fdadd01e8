#include "run/request_record.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "run/json_text.h"

namespace servesim {

void RecordText::put(uint64_t value) {
  std::array<char, 24> buffer;
  out_.append(buffer.data(), std::to_chars(buffer.begin(), buffer.end(), value).ptr);
}

void RecordText::put(int64_t value) {
  std::array<char, 24> buffer;
  out_.append(buffer.data(), std::to_chars(buffer.begin(), buffer.end(), value).ptr);
}

void RecordText::put(double value) {
  // Laid out as nlohmann lays out a double, as the rest of the result is (run/json_text.h).
  std::array<char, kJsonDoubleMaxChars> buffer;
  out_.append(buffer.data(), write_json_double(buffer.data(), value));
}

void RecordText::put_string(std::string_view value) {
  // Printable ASCII without quote or backslash needs no escaping: most values (the status).
  const bool plain = std::all_of(value.begin(), value.end(), [](char c) {
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
  if (!plain) {
    out_ += quoted_json_string(value);
    return;
  }
  out_ += '"';
  out_ += value;
  out_ += '"';
}

std::string quoted_json_string(std::string_view text) {
  return nlohmann::ordered_json(text).dump(-1, ' ', false,
                                           nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace servesim

#include "run/json_text.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace servesim {
namespace {

constexpr auto kDigitPairs = [] {
  std::array<char, 200> pairs{};
  for (int i = 0; i < 100; ++i) {
    pairs[static_cast<size_t>(2 * i)] = static_cast<char>('0' + i / 10);
    pairs[static_cast<size_t>(2 * i + 1)] = static_cast<char>('0' + i % 10);
  }
  return pairs;
}();

/// Writes the decimal digits of `n` (> 0, no leading zero) at `out`; returns how many.
int write_digits(char* out, uint64_t n) {
  char digits[20];
  char* start = digits + sizeof digits;
  while (n >= 100) {
    start -= 2;
    std::memcpy(start, &kDigitPairs[2 * (n % 100)], 2);
    n /= 100;
  }
  if (n >= 10) {
    start -= 2;
    std::memcpy(start, &kDigitPairs[2 * n], 2);
  } else {
    *--start = static_cast<char>('0' + n);
  }
  const auto count = static_cast<int>(digits + sizeof digits - start);
  std::memcpy(out, start, static_cast<size_t>(count));
  return count;
}

/// nlohmann's exponent: a sign, then at least two digits ("e+05", "e-123").
char* write_exponent(char* out, int e) {
  *out++ = e < 0 ? '-' : '+';
  const auto k = static_cast<unsigned>(e < 0 ? -e : e);
  if (k >= 100) {
    *out++ = static_cast<char>('0' + k / 100);
    std::memcpy(out, &kDigitPairs[2 * (k % 100)], 2);
  } else {
    std::memcpy(out, &kDigitPairs[2 * k], 2);
  }
  return out + 2;
}

/// Whether `text` can go between quotes as it is: printable ASCII without quote or backslash.
bool needs_no_escape(std::string_view text) {
  for (const char c : text)
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
  return true;
}

void append_string(std::string& out, const std::string& text) {
  if (needs_no_escape(text)) {
    out += '"';
    out += text;
    out += '"';
    return;
  }
  // Escapes and bytes that are not UTF-8 (replaced): nlohmann's own, rarely needed.
  out += nlohmann::ordered_json(text).dump(-1, ' ', false,
                                           nlohmann::ordered_json::error_handler_t::replace);
}

void append_indent(std::string& out, int columns) {
  out.append(static_cast<size_t>(columns), ' ');
}

void append_value(std::string& out, const nlohmann::ordered_json& value, int indent,
                  int current_indent) {
  using Kind = nlohmann::ordered_json::value_t;
  switch (value.type()) {
    case Kind::object: {
      if (value.empty()) {
        out += "{}";
        return;
      }
      const int inner = current_indent + indent;
      out += indent >= 0 ? "{\n" : "{";
      bool first = true;
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (!first) out += indent >= 0 ? ",\n" : ",";
        first = false;
        if (indent >= 0) append_indent(out, inner);
        append_string(out, it.key());
        out += indent >= 0 ? ": " : ":";
        append_value(out, it.value(), indent, inner);
      }
      if (indent >= 0) {
        out += '\n';
        append_indent(out, current_indent);
      }
      out += '}';
      return;
    }
    case Kind::array: {
      if (value.empty()) {
        out += "[]";
        return;
      }
      const int inner = current_indent + indent;
      out += indent >= 0 ? "[\n" : "[";
      bool first = true;
      for (const auto& element : value) {
        if (!first) out += indent >= 0 ? ",\n" : ",";
        first = false;
        if (indent >= 0) append_indent(out, inner);
        append_value(out, element, indent, inner);
      }
      if (indent >= 0) {
        out += '\n';
        append_indent(out, current_indent);
      }
      out += ']';
      return;
    }
    case Kind::string:
      append_string(out, value.get_ref<const std::string&>());
      return;
    case Kind::boolean:
      out += value.get<bool>() ? "true" : "false";
      return;
    case Kind::number_integer:
    case Kind::number_unsigned: {
      std::array<char, 24> buffer;
      const auto end = value.is_number_unsigned()
                           ? std::to_chars(buffer.begin(), buffer.end(), value.get<uint64_t>()).ptr
                           : std::to_chars(buffer.begin(), buffer.end(), value.get<int64_t>()).ptr;
      out.append(buffer.data(), end);
      return;
    }
    case Kind::number_float: {
      std::array<char, kJsonDoubleMaxChars> buffer;
      out.append(buffer.data(), write_json_double(buffer.data(), value.get<double>()));
      return;
    }
    case Kind::null:
    case Kind::discarded:
    case Kind::binary:
      // The results hold no binary values; nlohmann writes a discarded one as "<discarded>".
      out += value.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
      return;
  }
}

}  // namespace

char* write_json_double(char* out, double value) {
  if (!std::isfinite(value)) {
    std::memcpy(out, "null", 4);
    return out + 4;
  }
  if (std::signbit(value)) {
    *out++ = '-';
    value = -value;
  }
  if (value == 0) {
    std::memcpy(out, "0.0", 3);
    return out + 3;
  }
  // value = significand x 10^exponent, the shortest digits that read back to value (of those,
  // the closest), trailing zeros dropped as Grisu2's digits have none.
  const auto decimal = fmt::detail::dragonbox::to_decimal(value);
  uint64_t significand = decimal.significand;
  int exponent = decimal.exponent;
  while (significand % 10 == 0) {
    significand /= 10;
    ++exponent;
  }
  // nlohmann's layout (format_buffer in its to_chars.hpp, kMinExp -4, kMaxExp 15): k digits,
  // the point n digits from their start.
  const int k = write_digits(out, significand);
  const int n = k + exponent;
  constexpr int kMinExp = -4, kMaxExp = 15;
  if (k <= n && n <= kMaxExp) {  // digits[000].0
    std::memset(out + k, '0', static_cast<size_t>(n - k));
    out[n] = '.';
    out[n + 1] = '0';
    return out + n + 2;
  }
  if (0 < n && n <= kMaxExp) {  // dig.its
    std::memmove(out + n + 1, out + n, static_cast<size_t>(k - n));
    out[n] = '.';
    return out + k + 1;
  }
  if (kMinExp < n && n <= 0) {  // 0.[000]digits
    std::memmove(out + 2 - n, out, static_cast<size_t>(k));
    out[0] = '0';
    out[1] = '.';
    std::memset(out + 2, '0', static_cast<size_t>(-n));
    return out + 2 - n + k;
  }
  if (k > 1) {  // d.igitse+XX, else de+XX
    std::memmove(out + 2, out + 1, static_cast<size_t>(k - 1));
    out[1] = '.';
    out += k + 1;
  } else {
    out += 1;
  }
  *out++ = 'e';
  return write_exponent(out, n - 1);
}

void append_json(std::string& out, const nlohmann::ordered_json& value, int indent) {
  append_value(out, value, indent, 0);
}

std::string json_text(const nlohmann::ordered_json& value, int indent) {
  std::string out;
  append_json(out, value, indent);
  return out;
}

}  // namespace servesim

#include "run/json_text.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ostream>

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

constexpr auto kPowersOf10 = [] {
  std::array<uint64_t, 20> powers{};
  powers[0] = 1;
  for (size_t i = 1; i < powers.size(); ++i) powers[i] = powers[i - 1] * 10;
  return powers;
}();

/// How many decimal digits `n` has (n > 0): log2 to log10 (1233 / 4096), corrected once.
int count_digits(uint64_t n) {
  const int guess = ((64 - __builtin_clzll(n | 1)) * 1233) >> 12;
  return guess + (n >= kPowersOf10[static_cast<size_t>(guess)] ? 1 : 0);
}

/// Writes the `count` decimal digits of `n` at `out`, two at a time from the last.
void write_digits(char* out, uint64_t n, int count) {
  char* end = out + count;
  while (n >= 100) {
    end -= 2;
    std::memcpy(end, &kDigitPairs[2 * (n % 100)], 2);
    n /= 100;
  }
  if (n >= 10)
    std::memcpy(end - 2, &kDigitPairs[2 * n], 2);
  else
    end[-1] = static_cast<char>('0' + n);
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

/// Writes significand x 10^exponent (significand > 0) in nlohmann's layout of a double.
char* write_decimal(char* out, uint64_t significand, int exponent) {
  while (significand % 10 == 0) {  // Grisu2's digits have no trailing zero
    significand /= 10;
    ++exponent;
  }
  // nlohmann's layout (format_buffer in its to_chars.hpp, kMinExp -4, kMaxExp 15): k digits,
  // the point n digits from their start. Copies are of fixed sizes (no library call): they may
  // write past the end returned, within kJsonDoubleMaxChars, and read past the k digits,
  // within `digits`.
  char digits[40] = {};  // read past the k digits by the fixed-size copies
  const int k = count_digits(significand);
  write_digits(digits, significand, k);
  const int n = k + exponent;
  constexpr int kMinExp = -4, kMaxExp = 15;
  if (k <= n && n <= kMaxExp) {  // digits[000].0
    std::memcpy(out, digits, 16);
    std::memset(out + k, '0', 16);
    out[n] = '.';
    out[n + 1] = '0';
    return out + n + 2;
  }
  if (0 < n && n <= kMaxExp) {  // dig.its
    std::memcpy(out, digits, 16);
    out[n] = '.';
    std::memcpy(out + n + 1, digits + n, 17);
    return out + k + 1;
  }
  if (kMinExp < n && n <= 0) {  // 0.[000]digits
    std::memcpy(out, "0.0000", 6);
    std::memcpy(out + 2 - n, digits, 17);
    return out + 2 - n + k;
  }
  out[0] = digits[0];  // d.igitse+XX, or de+XX
  if (k > 1) {
    out[1] = '.';
    std::memcpy(out + 2, digits + 1, 16);
    out += k + 1;
  } else {
    out += 1;
  }
  *out++ = 'e';
  return write_exponent(out, n - 1);
}

void append_string(std::string& out, const std::string& text) {
  if (json_string_needs_no_escape(text)) {
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

/// Where append_value hands its text when the buffer has grown past kPieceBytes (between two
/// elements), or null to keep it all in the buffer.
struct Pieces {
  static constexpr size_t kPieceBytes = size_t{64} << 10;
  std::ostream* out;
  size_t skip;  ///< characters still to drop from the start of the text
  void write(std::string& text) {
    const size_t dropped = std::min(skip, text.size());
    skip -= dropped;
    out->write(text.data() + dropped, static_cast<std::streamsize>(text.size() - dropped));
    text.clear();
  }
};

void append_value(std::string& out, const nlohmann::ordered_json& value, int indent,
                  int current_indent, Pieces* pieces) {
  using Kind = nlohmann::ordered_json::value_t;
  switch (value.type()) {
    case Kind::object:
    case Kind::array: {
      // Members and elements alike: a key before each member, the same separators and indents.
      const bool object = value.is_object();
      if (value.empty()) {
        out += object ? "{}" : "[]";
        return;
      }
      const int inner = current_indent + indent;
      out += object ? '{' : '[';
      if (indent >= 0) out += '\n';
      bool first = true;
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (!first) out += indent >= 0 ? ",\n" : ",";
        first = false;
        if (indent >= 0) append_indent(out, inner);
        if (object) {
          append_string(out, it.key());
          out += indent >= 0 ? ": " : ":";
        }
        append_value(out, it.value(), indent, inner, pieces);
        if (pieces && out.size() >= Pieces::kPieceBytes) pieces->write(out);
      }
      if (indent >= 0) {
        out += '\n';
        append_indent(out, current_indent);
      }
      out += object ? '}' : ']';
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

bool json_string_needs_no_escape(std::string_view text) {
  for (const char c : text)
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
  return true;
}

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
  return write_decimal(out, decimal.significand, decimal.exponent);
}

char* write_json_decimal(char* out, int64_t units, int scale, double value) {
  // A decimal of at most 15 significant digits is the only one of that many or fewer digits
  // that reads back to its nearest double (DBL_DIG): if `value` is that double, the decimal,
  // trimmed, is value's shortest form, the one Dragonbox finds. units / 10^scale, both exact,
  // is the nearest double to the decimal (a division is correctly rounded).
  constexpr int64_t kMaxExactUnits = 1'000'000'000'000'000;  // 10^15
  if (units <= 0 || units >= kMaxExactUnits || scale < 0 || scale > 15 ||
      static_cast<double>(units) / static_cast<double>(kPowersOf10[static_cast<size_t>(scale)]) !=
          value)
    return write_json_double(out, value);
  return write_decimal(out, static_cast<uint64_t>(units), -scale);
}

void append_json(std::string& out, const nlohmann::ordered_json& value, int indent) {
  append_value(out, value, indent, 0, nullptr);
}

void write_json(std::ostream& out, const nlohmann::ordered_json& value, int indent, size_t skip) {
  std::string text;
  text.reserve(Pieces::kPieceBytes + 4096);
  Pieces pieces{&out, skip};
  append_value(text, value, indent, 0, &pieces);
  pieces.write(text);
}

std::string json_text(const nlohmann::ordered_json& value, int indent) {
  std::string out;
  append_json(out, value, indent);
  return out;
}

}  // namespace servesim

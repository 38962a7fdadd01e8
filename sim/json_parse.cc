#include "sim/json_parse.h"

#include <fmt/format.h>

#include <set>
#include <vector>

namespace servesim {
namespace {

using nlohmann::json;

/// A SAX pass that only checks: no document is built, so depth costs nothing before the limit.
class StrictChecker final : public nlohmann::json_sax<json> {
 public:
  StrictChecker(std::string_view text, std::string_view where, bool line_column)
      : text_(text), where_(where), line_column_(line_column) {}

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override { return open(true); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(false); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    Frame& f = frames_.back();
    f.component = json_pointer_component(k);
    if (!f.keys.insert(k).second)
      throw InputError(fmt::format("{}: {}: duplicate key", where_, pointer()));
    return true;
  }
  bool parse_error(std::size_t byte, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    // nlohmann's message: "[json.exception.KIND.ID] parse error at line L, column C: WHAT".
    std::string what = ex.what();
    if (const auto bracket = what.find("] "); bracket != std::string::npos)
      what.erase(0, bracket + 2);
    if (ex.id == 406)  // number overflow: valid syntax, a value no double holds
      throw InputError(fmt::format("{}: {}: {}", where_, pointer(), printable_excerpt(what, 120)));
    std::string at = where_;
    if (line_column_) {
      // The byte offset as a line and column a person can find.
      size_t line = 1, column = 1;
      for (size_t i = 0; i + 1 < byte && i < text_.size(); ++i) {
        if (text_[i] == '\n') {
          ++line;
          column = 1;
        } else {
          ++column;
        }
      }
      at = fmt::format("{}:{}:{}", where_, line, column);
    }
    throw JsonSyntaxError(fmt::format("{}: invalid JSON: {}", at, printable_excerpt(what, 160)));
  }

 private:
  struct Frame {
    bool is_object = false;
    int64_t next_index = 0;
    std::string component;  // of the element being read
    std::set<std::string, std::less<>> keys;
  };

  static std::string json_pointer_component(std::string_view key) {
    std::string out;
    for (char c : key) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
    return out;
  }
  bool value() {
    if (!frames_.empty() && !frames_.back().is_object)
      frames_.back().component = std::to_string(frames_.back().next_index++);
    return true;
  }
  bool open(bool is_object) {
    value();
    if (frames_.size() >= kMaxJsonDepth)
      throw InputError(
          fmt::format("{}: {}: nested deeper than {} levels", where_, pointer(), kMaxJsonDepth));
    frames_.push_back(Frame{is_object, 0, {}, {}});
    return true;
  }
  bool close() {
    frames_.pop_back();
    return true;
  }
  /// The JSON pointer of the value being read, shortened to stay one readable line.
  std::string pointer() const {
    std::string out;
    for (const Frame& f : frames_) out += "/" + f.component;
    if (out.empty()) return "/";
    return printable_excerpt(out, 120);
  }

  std::string_view text_;
  std::string where_;
  bool line_column_;
  std::vector<Frame> frames_;
};

}  // namespace

nlohmann::json parse_json_strict(std::string_view text, std::string_view where, bool line_column) {
  StrictChecker checker(text, where, line_column);
  json::sax_parse(text, &checker);
  // Checked: the DOM parse below meets only valid, shallow, duplicate-free JSON.
  return json::parse(text);
}

bool is_valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t extra = 0;
    uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1, code = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, code = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, code = c & 0x07u;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const auto d = static_cast<unsigned char>(text[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      code = (code << 6) | (d & 0x3Fu);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
    static constexpr uint32_t kMinCode[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMinCode[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
      return false;
    i += extra + 1;
  }
  return true;
}

std::string printable_excerpt(std::string_view text, size_t max_chars) {
  std::string out;
  size_t i = 0;
  while (i < text.size() && out.size() < max_chars) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    // A whole UTF-8 sequence is kept; anything else becomes '?'.
    const size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (c >= 0x80 && len > 1 && i + len <= text.size() && is_valid_utf8(text.substr(i, len))) {
      out += text.substr(i, len);
      i += len;
    } else {
      out += '?';
      ++i;
    }
  }
  if (i < text.size()) out += "...";
  return out;
}

}  // namespace servesim

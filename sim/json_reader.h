#pragma once
/// Strict reading of JSON configuration. Every value knows its file and JSON pointer, so every
/// error names them; objects remember which keys were read, and finish() rejects the rest.
///
///   JsonObject o = JsonValue::root(doc, "q11.json").object();
///   double bw = o.at("bandwidth_bytes_per_s").positive_double();
///   o.finish();  // error: q11.json: /bandwdth_bytes_per_s: unknown key; valid: ...

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace servesim {

class JsonObject;

class JsonValue {
 public:
  static JsonValue root(const nlohmann::json& doc, std::string file);
  JsonValue(const nlohmann::json* j, std::string pointer, std::shared_ptr<const std::string> file)
      : j_(j), pointer_(std::move(pointer)), file_(std::move(file)) {}

  [[noreturn]] void fail(std::string_view message) const;
  const std::string& pointer() const { return pointer_; }
  const std::string& file() const { return *file_; }
  const nlohmann::json& raw() const { return *j_; }

  bool is_object() const { return j_->is_object(); }
  bool is_array() const { return j_->is_array(); }
  bool is_string() const { return j_->is_string(); }
  bool is_number() const { return j_->is_number(); }

  double as_double() const;
  double positive_double() const;     // > 0
  double nonnegative_double() const;  // >= 0
  double fraction() const;            // in [0, 1]
  int64_t as_int() const;             // integral JSON number (1e3 accepted if integral)
  int64_t positive_int() const;       // in [1, 2^63 - 1]
  int64_t nonnegative_int() const;    // in [0, 2^63 - 1]
  /// An integer in [lo, hi]: callers that store it in a narrower type, or whose arithmetic on
  /// it must not overflow, say how far it may go.
  int64_t int_in_range(int64_t lo, int64_t hi) const;
  /// A number in [lo, hi] (lo >= 0): the sign is checked first, with the messages of
  /// positive_double / nonnegative_double, then the bounds.
  double number_in_range(double lo, double hi) const;
  /// A time in seconds in [0, kMaxInputSeconds] (sim/time.h), so it converts to Time safely.
  double seconds() const;
  double positive_seconds() const;  // as seconds(), > 0
  bool as_bool() const;
  std::string as_string() const;
  /// A string that must be one of `valid`; the error lists them.
  std::string one_of(std::initializer_list<std::string_view> valid) const;
  JsonObject object() const;
  std::vector<JsonValue> array() const;
  std::vector<JsonValue> nonempty_array() const;

 private:
  const nlohmann::json* j_;
  std::string pointer_;
  std::shared_ptr<const std::string> file_;
};

class JsonObject {
 public:
  explicit JsonObject(JsonValue v);
  /// A required key: missing is an error.
  JsonValue at(std::string_view key);
  std::optional<JsonValue> maybe(std::string_view key);
  bool has(std::string_view key) const;
  double get_or(std::string_view key, double fallback);
  int64_t get_or(std::string_view key, int64_t fallback);
  bool get_or(std::string_view key, bool fallback);
  std::string get_or(std::string_view key, std::string fallback);
  /// Accepts `key` without reading it (settings that apply to another choice).
  void allow(std::string_view key) { known_.emplace(key); }
  /// Rejects keys that were never read.
  void finish() const;
  const JsonValue& value() const { return v_; }
  [[noreturn]] void fail(std::string_view message) const { v_.fail(message); }
  std::vector<std::string> keys() const;

 private:
  JsonValue v_;
  std::set<std::string, std::less<>> known_;
};

std::string json_pointer_escape(std::string_view key);

}  // namespace servesim

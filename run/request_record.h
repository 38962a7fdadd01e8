#pragma once
/// A request's record (the result's "requests" array), from one list of fields written two ways:
/// as a JSON value, or straight as text laid out exactly as the result lays out an element of
/// that array: one record a line, as nlohmann's compact dump writes it (no JSON value built, one
/// append per field). tests/test_perf_memory.cc checks the text against the dumped value.

#include <cstddef>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>

#include "models/request.h"
#include "run/json_text.h"

namespace servesim {

/// `text` as a JSON string, quotes included, escaped as the result's dump escapes it.
std::string quoted_json_string(std::string_view text);

/// Calls sink.add(key, value) for each field of the record, in the result's order.
/// `instance_name` is the replica's name, already in the sink's form (see the sinks).
template <class Sink, class Name>
void describe_request(Sink& sink, const Request& r, std::string_view status, const Name& instance,
                      std::string_view reason) {
  sink.add("id", r.id);
  sink.add_string("status", status);
  sink.add_name("instance", instance);
  sink.add_seconds("arrival_s", r.spec.arrival);
  sink.add("prompt_tokens", r.spec.prompt_tokens);
  sink.add("output_tokens", r.spec.output_tokens);
  sink.add("predicted_output_tokens", r.predicted_output_tokens);
  sink.add("generated_tokens", r.generated_tokens);
  sink.add("preemptions", int64_t{r.preemptions});
  if (r.first_token != Time::max()) {
    sink.add_seconds("first_token_s", r.first_token);
    sink.add_milliseconds("ttft_ms", r.first_token - r.spec.arrival);
  }
  if (r.finished != Time::max()) {
    sink.add_seconds("finish_s", r.finished);
    sink.add_milliseconds("e2el_ms", r.finished - r.spec.arrival);
  }
  if (r.truncated) sink.add("truncated", true);
  if (r.spec.session_id >= 0) sink.add("session", r.spec.session_id);
  if (!reason.empty()) sink.add_string("reason", reason);
}

/// Builds the record as a JSON value; names are plain strings.
struct RecordJson {
  nlohmann::ordered_json json;
  template <class T>
  void add(const char* key, const T& value) {
    json[key] = value;
  }
  void add_seconds(const char* key, Time t) { json[key] = t.to_s(); }
  void add_milliseconds(const char* key, Time duration) { json[key] = duration.to_ms(); }
  void add_string(const char* key, std::string_view value) { json[key] = value; }
  void add_name(const char* key, const std::string& name) { json[key] = name; }
};

/// Appends the record's text to `out`, as an array element of the result (starting with its
/// indentation, without a separator): the record's compact dump on one line. Names come already
/// as JSON text (quoted_json_string).
/// The text is written through a pointer into room made at the end of `out` (no append per
/// piece); finish() trims `out` to the text, so `out` holds the record only once finish() ran.
class RecordText {
 public:
  explicit RecordText(std::string& out) : out_(out), used_(out.size()) {
    char* p = room(kRecordIndent.size() + 1);
    std::memcpy(p, kRecordIndent.data(), kRecordIndent.size());
    p[kRecordIndent.size()] = '{';
    used_ += kRecordIndent.size() + 1;
  }
  /// A number: exactly uint64_t, int64_t or double (each printed as nlohmann prints it), so no
  /// caller's value is silently converted to another.
  template <size_t N, class Number>
  requires std::is_same_v<Number, uint64_t> || std::is_same_v<Number, int64_t> ||
      std::is_same_v<Number, double>
  void add(const char (&key)[N], Number value) {
    char* p = start(key, kNumberRoom);
    used_ = static_cast<size_t>(put(p, value) - out_.data());
  }
  /// A time in seconds (Time::to_s) and a duration in milliseconds (Time::to_ms): the same
  /// text as add() of that double, written from the nanoseconds' digits when they are its
  /// shortest form (write_json_decimal).
  template <size_t N>
  void add_seconds(const char (&key)[N], Time t) {
    char* p = start(key, kNumberRoom);
    used_ = static_cast<size_t>(put_decimal(p, t.ns, 9, t.to_s()) - out_.data());
  }
  template <size_t N>
  void add_milliseconds(const char (&key)[N], Time duration) {
    char* p = start(key, kNumberRoom);
    used_ = static_cast<size_t>(put_decimal(p, duration.ns, 6, duration.to_ms()) - out_.data());
  }
  template <size_t N>
  void add(const char (&key)[N], bool value) {
    char* p = start(key, 5);
    std::memcpy(p, value ? "true" : "false", 5);
    used_ = static_cast<size_t>(p - out_.data()) + (value ? 4 : 5);
  }
  template <size_t N>
  void add_string(const char (&key)[N], std::string_view value) {
    if (!json_string_needs_no_escape(value)) return add_name(key, quoted_json_string(value));
    char* p = start(key, value.size() + 2);
    *p++ = '"';
    std::memcpy(p, value.data(), value.size());
    p[value.size()] = '"';
    used_ = static_cast<size_t>(p - out_.data()) + value.size() + 1;
  }
  template <size_t N>
  void add_name(const char (&key)[N], std::string_view quoted) {
    char* p = start(key, quoted.size());
    std::memcpy(p, quoted.data(), quoted.size());
    used_ = static_cast<size_t>(p - out_.data()) + quoted.size();
  }
  void finish() {
    *room(1) = '}';
    out_.resize(used_ + 1);
  }
  /// Each record's line starts with it, inside the result's top-level object.
  static constexpr std::string_view kRecordIndent = "  ";

 private:
  /// Room for a number's text: 20 characters for an integer, write_json_double's scratch.
  static constexpr size_t kNumberRoom = 48;
  /// Writes ",\"KEY\":" (the first key without the comma), as nlohmann's compact dump starts a
  /// key, with `value_bytes` of room after it; returns where the value goes.
  template <size_t N>
  char* start(const char (&key)[N], size_t value_bytes) {
    static_assert(N > 1, "a key is a non-empty string literal");
    char* p = room((N - 1) + 4 + value_bytes);
    *p = ',';
    p += first_ ? 0 : 1;
    first_ = false;
    *p++ = '"';
    std::memcpy(p, key, N - 1);
    p += N - 1;
    std::memcpy(p, "\":", 2);
    return p + 2;
  }
  /// At least `bytes` writable at out_.data() + used_.
  char* room(size_t bytes) {
    if (out_.size() - used_ < bytes) grow(bytes);
    return out_.data() + used_;
  }
  void grow(size_t bytes);
  char* put(char* p, uint64_t value);
  char* put(char* p, int64_t value);
  char* put(char* p, double value);
  static char* put_decimal(char* p, int64_t units, int scale, double value);
  std::string& out_;
  size_t used_;  // bytes of out_ written; out_.size() beyond is room
  bool first_ = true;
};

}  // namespace servesim

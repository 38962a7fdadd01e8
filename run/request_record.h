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

namespace servesim {

/// Calls sink.add(key, value) for each field of the record, in the result's order.
/// `instance_name` is the replica's name, already in the sink's form (see the sinks).
template <class Sink, class Name>
void describe_request(Sink& sink, const Request& r, std::string_view status, const Name& instance,
                      std::string_view reason) {
  sink.add("id", r.id);
  sink.add_string("status", status);
  sink.add_name("instance", instance);
  sink.add("arrival_s", r.spec.arrival.to_s());
  sink.add("prompt_tokens", r.spec.prompt_tokens);
  sink.add("output_tokens", r.spec.output_tokens);
  sink.add("predicted_output_tokens", r.predicted_output_tokens);
  sink.add("generated_tokens", r.generated_tokens);
  sink.add("preemptions", int64_t{r.preemptions});
  if (r.first_token != Time::max()) {
    sink.add("first_token_s", r.first_token.to_s());
    sink.add("ttft_ms", (r.first_token - r.spec.arrival).to_ms());
  }
  if (r.finished != Time::max()) {
    sink.add("finish_s", r.finished.to_s());
    sink.add("e2el_ms", (r.finished - r.spec.arrival).to_ms());
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
  void add_string(const char* key, std::string_view value) { json[key] = value; }
  void add_name(const char* key, const std::string& name) { json[key] = name; }
};

/// Appends the record's text to `out`, as an array element of the result (starting with its
/// indentation, without a separator): the record's compact dump on one line. Names come already
/// as JSON text (quoted_json_string).
/// Keys are string literals: each key's line start goes in as one piece of known length.
class RecordText {
 public:
  explicit RecordText(std::string& out) : out_(out) { out_ += kRecordIndent; out_ += '{'; }
  /// A number: exactly uint64_t, int64_t or double (each printed as nlohmann prints it), so no
  /// caller's value is silently converted to another.
  template <size_t N, class Number>
  requires std::is_same_v<Number, uint64_t> || std::is_same_v<Number, int64_t> ||
      std::is_same_v<Number, double>
  void add(const char (&key)[N], Number value) {
    start(key);
    put(value);
  }
  template <size_t N>
  void add(const char (&key)[N], bool value) {
    start(key);
    out_ += value ? "true" : "false";
  }
  template <size_t N>
  void add_string(const char (&key)[N], std::string_view value) {
    start(key);
    put_string(value);
  }
  template <size_t N>
  void add_name(const char (&key)[N], const std::string& quoted) {
    start(key);
    out_ += quoted;
  }
  void finish() { out_ += '}'; }
  /// Each record's line starts with it, inside the result's top-level object.
  static constexpr std::string_view kRecordIndent = "  ";

 private:
  /// ",\"KEY\":" (the first key without the comma), as nlohmann's compact dump starts a key.
  template <size_t N>
  void start(const char (&key)[N]) {
    static_assert(N > 1, "a key is a non-empty string literal");
    constexpr size_t kLength = (N - 1) + 4;
    char piece[kLength];
    std::memcpy(piece, ",\"", 2);
    std::memcpy(piece + 2, key, N - 1);
    std::memcpy(piece + 2 + (N - 1), "\":", 2);
    const size_t skip = first_ ? 1 : 0;
    out_.append(piece + skip, kLength - skip);
    first_ = false;
  }
  void put(uint64_t value);
  void put(int64_t value);
  void put(double value);
  void put_string(std::string_view value);
  std::string& out_;
  bool first_ = true;
};

/// `text` as a JSON string, quotes included, escaped as the result's dump escapes it.
std::string quoted_json_string(std::string_view text);

}  // namespace servesim

#pragma once
/// Replayed production traces, read one row per next() so that memory stays flat however long
/// the trace is. Both readers share the same conventions:
///   - arrival times are relative to the first row (the first request arrives at `start`),
///     and each gap is multiplied by `time_scale` (< 1 compresses the trace, raising the load);
///   - a row that does not parse, or whose timestamp is earlier than the previous row's, is an
///     InputError "FILE:LINE: message", LINE counting from 1 with the header as line 1;
///   - a recorded length of 0 becomes 1: every request has at least one prompt token and
///     yields at least one output token, so no request finishes without a first token;
///   - blank lines (a trailing newline, say) are skipped, and CRLF line ends are accepted;
///   - a line longer than kMaxLineBytes, a length above kMaxRequestTokens, or an arrival past
///     kMaxInputSeconds (after time_scale) is an error, so no input makes memory or time run
///     away.

#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/request.h"
#include "sim/json_reader.h"
#include "sim/time.h"
#include "traces/workload.h"

namespace servesim {

/// How trace timestamps map onto simulated time, and where replay stops.
struct TraceReplay {
  double time_scale = 1.0;
  Time start{};
  /// Stop after this many requests; nullopt replays the whole file.
  std::optional<int64_t> max_requests;
};

/// `path` as written in a scenario, resolved against `base_dir` (the scenario's folder) when
/// relative, and normalized ("scenarios/../x" becomes "x") so error messages stay readable. A
/// path that starts with "$SERVESIM_DATA/" is inside shared_data_dir() instead, so a scenario
/// that reads shared data works wherever it is copied or installed.
std::string resolve_input_path(const std::string& base_dir, const std::string& path);
/// The same for a scenario value; a "$SERVESIM_DATA/" path whose folder does not exist fails at
/// the value, saying how to set it.
std::string resolve_input_path(const std::string& base_dir, const JsonValue& path);

/// The shared data folder (traces/, kernels/, validation-open/, profiles/): the environment
/// variable SERVESIM_DATA when set, else the ../shared/data beside the source tree the binary
/// was built from.
std::string shared_data_dir();

/// Parses an Azure trace timestamp, "YYYY-MM-DD HH:MM:SS[.fraction]" (UTC, up to 9 fractional
/// digits), to nanoseconds since the Unix epoch. The fraction is read as an integer, so
/// "46.6805900" is exactly 46'680'590'000 ns: no floating-point rounding accumulates over a
/// day-long trace. Returns nullopt when the text is not such a timestamp, or its year is
/// outside [kMinTraceYear, kMaxTraceYear] (so that any two differ by less than 2^63 ns).
inline constexpr int kMinTraceYear = 1970;
inline constexpr int kMaxTraceYear = 2200;
std::optional<int64_t> parse_azure_timestamp_ns(std::string_view text);

namespace detail {

/// The fields of a CSV line (no quoting: the traces this reads never quote).
std::vector<std::string_view> split_commas(std::string_view line);
/// The same into `fields` (cleared first), whose storage a reader keeps from line to line.
void split_commas(std::string_view line, std::vector<std::string_view>& fields);

/// A text file read line by line, remembering the line number for error messages.
class LineReader {
 public:
  /// Longest line accepted: trace rows are short, and a file without newlines (/dev/zero)
  /// must fail fast rather than fill memory.
  static constexpr size_t kMaxLineBytes = size_t{1} << 20;
  /// Throws InputError "PATH: cannot open" when the file cannot be read.
  explicit LineReader(std::string path);
  /// The next non-blank line without its line end, or nullopt at the end of the file.
  std::optional<std::string_view> next_line();
  int64_t line_number() const { return line_number_; }
  const std::string& path() const { return path_; }
  /// Throws InputError "PATH:LINE: message" for the line last returned.
  [[noreturn]] void fail(std::string_view message) const;

 private:
  std::string path_;
  std::ifstream in_;
  std::unique_ptr<char[]> line_;  ///< kMaxLineBytes + 2 bytes, from the first line on
  int64_t line_number_ = 0;
};

/// Turns recorded timestamps into arrival times; rejects timestamps that go backwards.
class ReplayClock {
 public:
  explicit ReplayClock(const TraceReplay& replay) : replay_(replay) {}
  /// Arrival time of a row recorded at `recorded_ns`, or nullopt when it is earlier than the
  /// previous row's. An arrival past kMaxInputSeconds fails through `reader`.
  std::optional<Time> arrival(int64_t recorded_ns, const LineReader& reader);
  /// Whether max_requests rows have been replayed already.
  bool exhausted() const { return replay_.max_requests && emitted_ >= *replay_.max_requests; }
  void count_emitted() { ++emitted_; }
  int64_t previous_ns() const { return previous_ns_; }

 private:
  TraceReplay replay_;
  std::optional<int64_t> first_ns_;
  int64_t previous_ns_ = 0;
  int64_t emitted_ = 0;
};

}  // namespace detail

/// Azure LLM inference trace 2023/2024: CSV with a header naming the columns TIMESTAMP,
/// ContextTokens and GeneratedTokens (in any order; every row must have as many fields as the
/// header). ContextTokens is the prompt length, GeneratedTokens the output length.
class AzureCsvStream : public ArrivalStream {
 public:
  /// Opens the file and reads its header; `path` is used as is in error messages.
  AzureCsvStream(std::string path, TraceReplay replay);
  std::optional<RequestSpec> next() override;

 private:
  detail::LineReader reader_;
  detail::ReplayClock clock_;
  size_t field_count_ = 0;
  size_t timestamp_column_ = 0;
  size_t context_column_ = 0;
  size_t generated_column_ = 0;
  std::vector<std::string_view> fields_;  ///< the current line's, into the reader's buffer
};

/// Mooncake (FAST'25) trace: JSON lines {"timestamp": ms, "input_length", "output_length",
/// "hash_ids": [...]}, all four keys required and no others accepted. hash_ids become
/// prefix_block_hashes with prefix_block_tokens = 512, the block size the trace was hashed
/// with; equal ids mean a reusable KV prefix.
class MooncakeJsonlStream : public ArrivalStream {
 public:
  static constexpr int64_t kBlockTokens = 512;
  MooncakeJsonlStream(std::string path, TraceReplay replay);
  std::optional<RequestSpec> next() override;

 private:
  detail::LineReader reader_;
  detail::ReplayClock clock_;
};

}  // namespace servesim

#pragma once
/// Traces in the layout their authors chose: a CSV with a header, or JSON lines, read through a
/// mapping from the request's fields (arrival time, prompt and output lengths, and optionally a
/// session and prefix block ids) to the file's column or key names. BurstGPT's CSV is such a
/// trace with a fixed mapping. Columns and keys the mapping does not name are ignored, so a
/// trace is read as published. The conventions of traces/trace_streams.h hold (arrivals relative
/// to the first row, time_scale, lengths of 0 read as 1, errors "FILE:LINE: message").

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "traces/trace_streams.h"

namespace servesim {

/// Which column (CSV) or key (JSONL) holds each field of a request.
struct TraceColumns {
  std::string arrival;
  /// Nanoseconds per unit of the arrival column; 0 reads it as a date-time
  /// "YYYY-MM-DD HH:MM:SS[.fraction]" (parse_azure_timestamp_ns).
  int64_t arrival_unit_ns = 1'000'000'000;
  std::string prompt_tokens;
  std::string output_tokens;
  /// Optional (empty: none): rows with equal values belong to one multi-turn session.
  std::string session;
  /// Optional (empty: none): the prompt's prefix block ids, equal ids for equal blocks; in a
  /// CSV, non-negative integers separated by spaces, in JSONL an array of them.
  std::string prefix_hashes;
  int64_t prefix_block_tokens = 0;  ///< tokens per prefix block; needed with prefix_hashes
  /// CSV only: keep the rows whose named columns hold these exact values (BurstGPT's Model,
  /// say, to replay one model's requests); the first row kept is the time origin.
  std::vector<std::pair<std::string, std::string>> keep_rows_where;
};

/// The mapping of BurstGPT (github.com/HPMLL/BurstGPT, data/BurstGPT_*.csv): "Timestamp" in
/// seconds from the trace's start, "Request tokens", "Response tokens". Its failed requests
/// have 0 response tokens, read as 1 as every trace's are.
TraceColumns burstgpt_columns();

/// A CSV trace read through a mapping. Fields are not quoted (as in the published traces);
/// every row must have as many fields as the header.
class CsvTraceStream : public ArrivalStream {
 public:
  CsvTraceStream(std::string path, TraceColumns columns, TraceReplay replay);
  std::optional<RequestSpec> next() override;

 private:
  detail::LineReader reader_;
  detail::ReplayClock clock_;
  TraceColumns columns_;
  size_t field_count_ = 0;
  size_t arrival_ = 0, prompt_ = 0, output_ = 0;
  std::optional<size_t> session_, prefix_;
  std::vector<std::pair<size_t, std::string>> keep_;         ///< column index and value to keep
  std::map<std::string, int64_t, std::less<>> session_ids_;  ///< in order of first appearance
};

/// A JSON-lines trace read through a mapping: one object per line.
class JsonlTraceStream : public ArrivalStream {
 public:
  JsonlTraceStream(std::string path, TraceColumns columns, TraceReplay replay);
  std::optional<RequestSpec> next() override;

 private:
  detail::LineReader reader_;
  detail::ReplayClock clock_;
  TraceColumns columns_;
  std::map<std::string, int64_t, std::less<>> session_ids_;
};

}  // namespace servesim

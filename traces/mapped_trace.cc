#include "traces/mapped_trace.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <system_error>

#include "sim/error.h"
#include "sim/json_parse.h"
#include "sim/json_reader.h"

namespace servesim {
namespace {

/// Recorded times may be absolute (Unix epoch) or relative, but not negative, and at most this
/// many seconds (year 2096 as epoch time), so that two of them differ by less than 2^63 ns.
constexpr double kMaxRecordedSeconds = 4e9;

int64_t at_least_one(int64_t tokens) {
  return std::max<int64_t>(tokens, 1);
}

/// A recorded time in `unit_ns` units (a number, not NaN) as nanoseconds; nullopt when negative
/// or too large.
std::optional<int64_t> recorded_ns(double value, int64_t unit_ns) {
  const double seconds = value * static_cast<double>(unit_ns) * 1e-9;
  if (!(seconds >= 0 && seconds <= kMaxRecordedSeconds)) return std::nullopt;
  return static_cast<int64_t>(std::llround(value * static_cast<double>(unit_ns)));
}

std::string unit_words(const TraceColumns& c) {
  return c.arrival_unit_ns == 0
             ? std::string("a date-time 'YYYY-MM-DD HH:MM:SS[.fraction]'")
             : fmt::format(
                   "a non-negative number of {:g} s units, at most "
                   "{:g} s",
                   static_cast<double>(c.arrival_unit_ns) * 1e-9, kMaxRecordedSeconds);
}

/// A session's value as the id of the session: sessions are numbered in order of appearance,
/// so equal values share an id whatever their text.
int64_t session_id(std::map<std::string, int64_t, std::less<>>& ids, std::string_view value) {
  const auto it = ids.find(value);
  if (it != ids.end()) return it->second;
  const int64_t id = static_cast<int64_t>(ids.size());
  ids.emplace(std::string(value), id);
  return id;
}

void check_prefix_count(size_t count, const TraceColumns& c, const detail::LineReader& reader) {
  // One id per block of the prompt: more cannot be a prefix of any request.
  if (static_cast<int64_t>(count) > kMaxRequestTokens / c.prefix_block_tokens)
    reader.fail(fmt::format("{}: {} ids is more than a {}-token prompt has blocks", c.prefix_hashes,
                            count, kMaxRequestTokens));
}

}  // namespace

TraceColumns burstgpt_columns() {
  TraceColumns c;
  c.arrival = "Timestamp";
  c.arrival_unit_ns = 1'000'000'000;
  c.prompt_tokens = "Request tokens";
  c.output_tokens = "Response tokens";
  return c;
}

CsvTraceStream::CsvTraceStream(std::string path, TraceColumns columns, TraceReplay replay)
    : reader_(std::move(path)), clock_(replay), columns_(std::move(columns)) {
  auto header = reader_.next_line();
  if (!header)
    throw InputError(fmt::format("{}: empty file, expected a CSV header", reader_.path()));
  std::string_view text = *header;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte order mark
  const auto names = detail::split_commas(text);
  field_count_ = names.size();
  auto column = [&](const std::string& name) {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end())
      reader_.fail(
          fmt::format("missing column '{}'; header has: {}", name, fmt::join(names, ", ")));
    return static_cast<size_t>(it - names.begin());
  };
  arrival_ = column(columns_.arrival);
  prompt_ = column(columns_.prompt_tokens);
  output_ = column(columns_.output_tokens);
  if (!columns_.session.empty()) session_ = column(columns_.session);
  if (!columns_.prefix_hashes.empty()) prefix_ = column(columns_.prefix_hashes);
  for (const auto& [name, value] : columns_.keep_rows_where)
    keep_.emplace_back(column(name), value);
}

std::optional<RequestSpec> CsvTraceStream::next() {
  if (clock_.exhausted()) return std::nullopt;
  std::vector<std::string_view> fields;
  for (bool kept = false; !kept;) {
    const auto line = reader_.next_line();
    if (!line) return std::nullopt;
    fields = detail::split_commas(*line);
    if (fields.size() != field_count_)
      reader_.fail(
          fmt::format("expected {} comma-separated fields, got {}", field_count_, fields.size()));
    kept = std::all_of(keep_.begin(), keep_.end(),
                       [&](const auto& keep) { return fields[keep.first] == keep.second; });
  }

  const std::string_view stamp = fields[arrival_];
  std::optional<int64_t> ns;
  if (columns_.arrival_unit_ns == 0) {
    ns = parse_azure_timestamp_ns(stamp);
  } else {
    double value = 0;
    const auto [end, ec] = std::from_chars(stamp.data(), stamp.data() + stamp.size(), value);
    if (ec == std::errc() && end == stamp.data() + stamp.size() && std::isfinite(value))
      ns = recorded_ns(value, columns_.arrival_unit_ns);
  }
  if (!ns)
    reader_.fail(fmt::format("{}: expected {}, got '{}'", columns_.arrival, unit_words(columns_),
                             printable_excerpt(stamp)));
  auto count = [&](size_t column, const std::string& name) {
    const std::string_view text = fields[column];
    int64_t value = -1;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < 0)
      reader_.fail(fmt::format("{}: expected a non-negative integer, got '{}'", name,
                               printable_excerpt(text)));
    if (value > kMaxRequestTokens)
      reader_.fail(fmt::format("{}: {} tokens is more than the {} a request may have", name, value,
                               kMaxRequestTokens));
    return value;
  };
  RequestSpec spec;
  spec.prompt_tokens = at_least_one(count(prompt_, columns_.prompt_tokens));
  spec.output_tokens = at_least_one(count(output_, columns_.output_tokens));
  if (session_) spec.session_id = session_id(session_ids_, fields[*session_]);
  if (prefix_) {
    std::string_view ids = fields[*prefix_];
    while (!ids.empty()) {
      const size_t space = ids.find(' ');
      const std::string_view id = ids.substr(0, space);
      ids = space == std::string_view::npos ? std::string_view() : ids.substr(space + 1);
      if (id.empty()) continue;  // repeated spaces
      uint64_t value = 0;
      const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), value);
      if (ec != std::errc() || end != id.data() + id.size())
        reader_.fail(
            fmt::format("{}: expected non-negative integer ids separated by spaces, got "
                        "'{}'",
                        columns_.prefix_hashes, printable_excerpt(id)));
      spec.prefix_block_hashes.push_back(value);
      check_prefix_count(spec.prefix_block_hashes.size(), columns_, reader_);
    }
    spec.prefix_block_tokens = columns_.prefix_block_tokens;
  }
  const auto arrival = clock_.arrival(*ns, reader_);
  if (!arrival)
    reader_.fail(fmt::format("{}: '{}' is earlier than the previous row's time", columns_.arrival,
                             printable_excerpt(stamp)));
  spec.arrival = *arrival;
  clock_.count_emitted();
  return spec;
}

JsonlTraceStream::JsonlTraceStream(std::string path, TraceColumns columns, TraceReplay replay)
    : reader_(std::move(path)), clock_(replay), columns_(std::move(columns)) {}

std::optional<RequestSpec> JsonlTraceStream::next() {
  if (clock_.exhausted()) return std::nullopt;
  const auto line = reader_.next_line();
  if (!line) return std::nullopt;
  const std::string where = fmt::format("{}:{}", reader_.path(), reader_.line_number());
  const nlohmann::json doc = parse_json_strict(*line, where, /*line_column=*/false);
  const JsonValue root = JsonValue::root(doc, where);
  // Keys the mapping does not name are the trace's own business: read, never refused.
  JsonObject row = root.object();

  const JsonValue stamp = row.at(columns_.arrival);
  std::optional<int64_t> ns;
  if (columns_.arrival_unit_ns == 0) {
    if (stamp.is_string()) ns = parse_azure_timestamp_ns(stamp.as_string());
  } else if (stamp.is_number()) {
    ns = recorded_ns(stamp.as_double(), columns_.arrival_unit_ns);
  }
  if (!ns)
    stamp.fail(fmt::format("expected {}, got {}", unit_words(columns_),
                           printable_excerpt(stamp.raw().dump())));

  RequestSpec spec;
  spec.prompt_tokens =
      at_least_one(row.at(columns_.prompt_tokens).int_in_range(0, kMaxRequestTokens));
  spec.output_tokens =
      at_least_one(row.at(columns_.output_tokens).int_in_range(0, kMaxRequestTokens));
  if (!columns_.session.empty()) {
    const JsonValue s = row.at(columns_.session);
    if (s.is_string())
      spec.session_id = session_id(session_ids_, s.as_string());
    else if (s.raw().is_number_integer())
      spec.session_id = session_id(session_ids_, s.raw().dump());
    else
      s.fail("expected a string or an integer session id");
  }
  if (!columns_.prefix_hashes.empty()) {
    const JsonValue ids = row.at(columns_.prefix_hashes);
    const auto values = ids.array();
    check_prefix_count(values.size(), columns_, reader_);
    spec.prefix_block_hashes.reserve(values.size());
    for (const JsonValue& h : values)
      spec.prefix_block_hashes.push_back(static_cast<uint64_t>(h.nonnegative_int()));
    spec.prefix_block_tokens = columns_.prefix_block_tokens;
  }
  const auto arrival = clock_.arrival(*ns, reader_);
  if (!arrival) stamp.fail("is earlier than the previous row's time");
  spec.arrival = *arrival;
  clock_.count_emitted();
  return spec;
}

}  // namespace servesim

#include "traces/trace_streams.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <system_error>
#include <vector>

#include "sim/error.h"
#include "sim/json_parse.h"
#include "sim/json_reader.h"

namespace servesim {
namespace {

constexpr int64_t kNsPerS = 1'000'000'000;
constexpr int64_t kNsPerMs = 1'000'000;

/// Reads exactly `width` decimal digits at `pos`, advancing it.
std::optional<int> fixed_digits(std::string_view text, size_t& pos, size_t width) {
  if (pos + width > text.size()) return std::nullopt;
  int value = 0;
  for (size_t i = 0; i < width; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  pos += width;
  return value;
}

bool expect_char(std::string_view text, size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

/// A non-negative decimal integer with nothing around it.
std::optional<int64_t> parse_count(std::string_view text) {
  if (text.empty() || text.front() < '0' || text.front() > '9') return std::nullopt;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

int64_t at_least_one(int64_t tokens) {
  return std::max<int64_t>(tokens, 1);
}

/// parse_azure_timestamp_ns for the traces' own form alone ("2023-11-16 18:15:46.6805900": a
/// space, a fraction of 1 to 9 digits, no offset) with a day of month up to 28; nullopt for
/// anything else, which the general parser then reads (and may refuse). A trace has a line
/// per request: this reads the fixed places directly.
std::optional<int64_t> parse_plain_timestamp_ns(std::string_view text) {
  if (text.size() < 21 || text.size() > 29 || text[4] != '-' || text[7] != '-' || text[10] != ' ' ||
      text[13] != ':' || text[16] != ':' || text[19] != '.')
    return std::nullopt;
  const auto digit = [&](size_t i) { return static_cast<unsigned>(text[i]) - unsigned{'0'}; };
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18})
    if (digit(i) > 9) return std::nullopt;
  const auto number = [&](size_t i, size_t width) {
    int64_t value = 0;
    for (size_t k = i; k < i + width; ++k) value = value * 10 + digit(k);
    return value;
  };
  const int64_t year = number(0, 4), month = number(5, 2), day = number(8, 2);
  const int64_t hour = number(11, 2), minute = number(14, 2), second = number(17, 2);
  if (year < kMinTraceYear || year > kMaxTraceYear || month < 1 || month > 12 || day < 1 ||
      day > 28 || hour > 23 || minute > 59 || second > 60)
    return std::nullopt;
  // The fraction's digits as one integer, scaled to nanoseconds once (1 to 9 digits).
  constexpr int64_t kNsPerFractionDigits[] = {0,      100'000'000, 10'000'000, 1'000'000, 100'000,
                                              10'000, 1'000,       100,        10,        1};
  int64_t fraction = 0;
  for (size_t i = 20; i < text.size(); ++i) {
    if (digit(i) > 9) return std::nullopt;
    fraction = fraction * 10 + digit(i);
  }
  const int64_t fraction_ns = fraction * kNsPerFractionDigits[text.size() - 20];
  // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil, what
  // std::chrono::sys_days computes), years from March so that leap days come last.
  const int64_t y = year - (month <= 2 ? 1 : 0);
  const int64_t era = y / 400, year_of_era = y - era * 400;
  const int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  const int64_t days = era * 146097 + day_of_era - 719468;
  return (days * 86400 + hour * 3600 + minute * 60 + second) * kNsPerS + fraction_ns;
}

}  // namespace

std::optional<int64_t> parse_azure_timestamp_ns(std::string_view text) {
  if (const std::optional<int64_t> plain = parse_plain_timestamp_ns(text)) return plain;
  size_t pos = 0;
  const auto year = fixed_digits(text, pos, 4);
  if (!year || !expect_char(text, pos, '-')) return std::nullopt;
  const auto month = fixed_digits(text, pos, 2);
  if (!month || !expect_char(text, pos, '-')) return std::nullopt;
  const auto day = fixed_digits(text, pos, 2);
  if (!day) return std::nullopt;
  if (*year < kMinTraceYear || *year > kMaxTraceYear) return std::nullopt;
  if (!expect_char(text, pos, ' ') && !expect_char(text, pos, 'T')) return std::nullopt;
  const auto hour = fixed_digits(text, pos, 2);
  if (!hour || !expect_char(text, pos, ':')) return std::nullopt;
  const auto minute = fixed_digits(text, pos, 2);
  if (!minute || !expect_char(text, pos, ':')) return std::nullopt;
  const auto second = fixed_digits(text, pos, 2);
  if (!second) return std::nullopt;
  int64_t fraction_ns = 0;
  if (expect_char(text, pos, '.')) {
    int64_t scale = kNsPerS;
    size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (++digits > 9) return std::nullopt;  // finer than a nanosecond: not representable
      scale /= 10;
      fraction_ns += (text[pos] - '0') * scale;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
  }
  // An optional UTC offset, as the 2024 trace writes it ("+00:00"), or "Z".
  int64_t offset_s = 0;
  if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int64_t sign = text[pos] == '+' ? 1 : -1;
    ++pos;
    const auto offset_h = fixed_digits(text, pos, 2);
    if (!offset_h || !expect_char(text, pos, ':')) return std::nullopt;
    const auto offset_m = fixed_digits(text, pos, 2);
    if (!offset_m || *offset_h > 23 || *offset_m > 59) return std::nullopt;
    offset_s = sign * (*offset_h * 3600 + *offset_m * 60);
  } else if (pos < text.size() && text[pos] == 'Z') {
    ++pos;
  }
  if (pos != text.size()) return std::nullopt;

  const std::chrono::year_month_day date{std::chrono::year{*year},
                                         std::chrono::month{static_cast<unsigned>(*month)},
                                         std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok() || *hour > 23 || *minute > 59 || *second > 60) return std::nullopt;
  const int64_t days = std::chrono::sys_days{date}.time_since_epoch().count();
  const int64_t seconds = days * 86400 + *hour * 3600 + *minute * 60 + *second - offset_s;
  return seconds * kNsPerS + fraction_ns;
}

namespace {
constexpr std::string_view kDataPrefix = "$SERVESIM_DATA/";
}  // namespace

std::string shared_data_dir() {
  const char* env = std::getenv("SERVESIM_DATA");
  return env && *env ? std::string(env) : std::string(SERVESIM_DEFAULT_DATA_DIR);
}

std::string resolve_input_path(const std::string& base_dir, const std::string& path) {
  if (path.starts_with(kDataPrefix))
    return (std::filesystem::path(shared_data_dir()) / path.substr(kDataPrefix.size()))
        .lexically_normal()
        .string();
  std::filesystem::path p(path);
  if (p.is_relative() && !base_dir.empty()) p = std::filesystem::path(base_dir) / p;
  return p.lexically_normal().string();
}

std::string resolve_input_path(const std::string& base_dir, const JsonValue& path) {
  const std::string text = path.as_string();
  if (text.starts_with(kDataPrefix)) {
    std::error_code ec;
    if (!std::filesystem::is_directory(shared_data_dir(), ec))
      path.fail(fmt::format(
          "the shared data folder {} does not exist; set SERVESIM_DATA to the folder that holds "
          "traces/ (../shared/data beside a clone)",
          shared_data_dir()));
  }
  return resolve_input_path(base_dir, text);
}

namespace detail {

std::vector<std::string_view> split_commas(std::string_view line) {
  std::vector<std::string_view> fields;
  split_commas(line, fields);
  return fields;
}

void split_commas(std::string_view line, std::vector<std::string_view>& fields) {
  fields.clear();
  size_t begin = 0;
  while (true) {
    const size_t comma = line.find(',', begin);
    if (comma == std::string_view::npos) {
      fields.push_back(line.substr(begin));
      return;
    }
    fields.push_back(line.substr(begin, comma - begin));
    begin = comma + 1;
  }
}

LineReader::LineReader(std::string path) : path_(std::move(path)) {
  std::error_code ec;
  if (std::filesystem::is_directory(path_, ec))
    throw InputError(fmt::format("{}: is a directory, not a file", path_));
  in_.open(path_, std::ios::binary);
  if (!in_) throw InputError(fmt::format("{}: cannot open", path_));
}

std::optional<std::string_view> LineReader::next_line() {
  // istream::getline scans the stream's buffer for the line end a block at a time (libstdc++
  // specialises it for char), where taking the characters one by one cost some 20 instructions
  // each. Room for one character past the limit, so that a longer line is told apart.
  constexpr auto kRoom = static_cast<std::streamsize>(kMaxLineBytes + 2);
  if (!line_) line_ = std::make_unique_for_overwrite<char[]>(static_cast<size_t>(kRoom));
  for (;;) {
    in_.getline(line_.get(), kRoom);
    const auto extracted = static_cast<size_t>(in_.gcount());
    if (extracted == 0) return std::nullopt;  // the end of the file
    ++line_number_;
    // A line end was extracted but not stored unless the file ended first.
    size_t size = in_.eof() ? extracted : extracted - 1;
    if (in_.fail() || size > kMaxLineBytes)
      fail(fmt::format("line longer than {} KiB", kMaxLineBytes >> 10));
    if (size > 0 && line_[size - 1] == '\r') --size;
    if (size > 0) return std::string_view(line_.get(), size);
    if (in_.eof()) return std::nullopt;
  }
}

void LineReader::fail(std::string_view message) const {
  throw InputError(fmt::format("{}:{}: {}", path_, line_number_, message));
}

std::optional<Time> ReplayClock::arrival(int64_t recorded_ns, const LineReader& reader) {
  if (!first_ns_) {
    first_ns_ = recorded_ns;
  } else if (recorded_ns < previous_ns_) {
    return std::nullopt;
  }
  previous_ns_ = recorded_ns;
  // Timestamps lie within kMinTraceYear..kMaxTraceYear (or are checked milliseconds), so the
  // difference fits; scaled, it must stay within the input horizon before it becomes a Time
  // (start_s is within it too, and twice the horizon is still far from overflow).
  const int64_t delta_ns = recorded_ns - *first_ns_;
  const double scaled_s = static_cast<double>(delta_ns) * 1e-9 * replay_.time_scale;
  if (!(scaled_s <= kMaxInputSeconds))
    reader.fail(
        fmt::format("arrives {:g} s after the first row (time_scale {:g}), more than "
                    "{:g} s (about 31 years)",
                    scaled_s, replay_.time_scale, kMaxInputSeconds));
  const int64_t scaled_ns =
      replay_.time_scale == 1.0
          ? delta_ns
          : static_cast<int64_t>(std::llround(static_cast<double>(delta_ns) * replay_.time_scale));
  return replay_.start + Time::from_ns(scaled_ns);
}

}  // namespace detail

AzureCsvStream::AzureCsvStream(std::string path, TraceReplay replay)
    : reader_(std::move(path)), clock_(replay) {
  auto header = reader_.next_line();
  if (!header)
    throw InputError(fmt::format("{}: empty file, expected a CSV header", reader_.path()));
  std::string_view text = *header;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte order mark
  const auto names = detail::split_commas(text);
  field_count_ = names.size();
  auto column = [&](std::string_view name) {
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end())
      reader_.fail(
          fmt::format("missing column '{}'; header has: {}", name, fmt::join(names, ", ")));
    return static_cast<size_t>(it - names.begin());
  };
  timestamp_column_ = column("TIMESTAMP");
  context_column_ = column("ContextTokens");
  generated_column_ = column("GeneratedTokens");
}

std::optional<RequestSpec> AzureCsvStream::next() {
  if (clock_.exhausted()) return std::nullopt;
  const auto line = reader_.next_line();
  if (!line) return std::nullopt;
  detail::split_commas(*line, fields_);
  const auto& fields = fields_;
  if (fields.size() != field_count_)
    reader_.fail(
        fmt::format("expected {} comma-separated fields, got {}", field_count_, fields.size()));

  const std::string_view stamp = fields[timestamp_column_];
  const auto recorded_ns = parse_azure_timestamp_ns(stamp);
  if (!recorded_ns)
    reader_.fail(fmt::format(
        "TIMESTAMP: expected a time 'YYYY-MM-DD HH:MM:SS[.fraction]' in years {}-{}, got '{}'",
        kMinTraceYear, kMaxTraceYear, printable_excerpt(stamp)));
  auto count = [&](size_t column, std::string_view name) {
    const auto value = parse_count(fields[column]);
    if (!value)
      reader_.fail(fmt::format("{}: expected a non-negative integer, got '{}'", name,
                               printable_excerpt(fields[column])));
    if (*value > kMaxRequestTokens)
      reader_.fail(fmt::format("{}: {} tokens is more than the {} a request may have", name, *value,
                               kMaxRequestTokens));
    return *value;
  };
  RequestSpec spec;
  spec.prompt_tokens = at_least_one(count(context_column_, "ContextTokens"));
  spec.output_tokens = at_least_one(count(generated_column_, "GeneratedTokens"));
  const auto arrival = clock_.arrival(*recorded_ns, reader_);
  if (!arrival)
    reader_.fail(fmt::format("TIMESTAMP: '{}' is earlier than the previous row's time", stamp));
  spec.arrival = *arrival;
  clock_.count_emitted();
  return spec;
}

MooncakeJsonlStream::MooncakeJsonlStream(std::string path, TraceReplay replay)
    : reader_(std::move(path)), clock_(replay) {}

std::optional<RequestSpec> MooncakeJsonlStream::next() {
  if (clock_.exhausted()) return std::nullopt;
  const auto line = reader_.next_line();
  if (!line) return std::nullopt;
  const std::string where = fmt::format("{}:{}", reader_.path(), reader_.line_number());
  const nlohmann::json doc = parse_json_strict(*line, where, /*line_column=*/false);
  const JsonValue root = JsonValue::root(doc, where);
  JsonObject row = root.object();

  const JsonValue stamp = row.at("timestamp");
  int64_t recorded_ns = 0;
  if (stamp.raw().is_number_integer()) {
    const int64_t ms = stamp.nonnegative_int();
    if (ms > std::numeric_limits<int64_t>::max() / kNsPerMs)
      stamp.fail(fmt::format("{} ms is too large", ms));
    recorded_ns = ms * kNsPerMs;
  } else {
    const double ms = stamp.nonnegative_double();
    if (ms > 9e12) stamp.fail(fmt::format("{} ms is too large", ms));
    recorded_ns = static_cast<int64_t>(std::llround(ms * static_cast<double>(kNsPerMs)));
  }

  RequestSpec spec;
  spec.prompt_tokens = at_least_one(row.at("input_length").int_in_range(0, kMaxRequestTokens));
  spec.output_tokens = at_least_one(row.at("output_length").int_in_range(0, kMaxRequestTokens));
  const JsonValue hash_ids = row.at("hash_ids");
  const auto hashes = hash_ids.array();
  // One id per 512-token block of the prompt: more is not a prefix of this request.
  if (static_cast<int64_t>(hashes.size()) > kMaxRequestTokens / kBlockTokens)
    hash_ids.fail(fmt::format("{} ids is more than a {}-token prompt has blocks", hashes.size(),
                              kMaxRequestTokens));
  spec.prefix_block_hashes.reserve(hashes.size());
  for (const JsonValue& h : hashes)
    spec.prefix_block_hashes.push_back(static_cast<uint64_t>(h.nonnegative_int()));
  spec.prefix_block_tokens = kBlockTokens;
  row.finish();

  const auto arrival = clock_.arrival(recorded_ns, reader_);
  if (!arrival)
    stamp.fail(
        fmt::format("{} ms is earlier than the previous row's {} ms",
                    static_cast<double>(recorded_ns) / static_cast<double>(kNsPerMs),
                    static_cast<double>(clock_.previous_ns()) / static_cast<double>(kNsPerMs)));
  spec.arrival = *arrival;
  clock_.count_emitted();
  return spec;
}

}  // namespace servesim

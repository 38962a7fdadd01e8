#include "traces/length_dist.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string_view>

#include "sim/error.h"
#include "traces/trace_streams.h"

namespace servesim {
namespace {

constexpr std::string_view kDistKinds[] = {"fixed", "uniform", "lognormal", "empirical"};

}  // namespace

LengthDist parse_length_dist(const JsonValue& value, const std::string& base_dir) {
  LengthDist dist;
  if (value.is_number()) {
    dist.lo_tokens = dist.hi_tokens = value.int_in_range(1, kMaxRequestTokens);
    return dist;
  }
  if (!value.is_object())
    value.fail(
        "expected a token count or a distribution object: {\"fixed\": n}, {\"uniform\": [lo, "
        "hi]}, {\"lognormal\": [mu, sigma]}, or {\"empirical\": \"file.csv\", \"column\": name}");
  JsonObject obj = value.object();
  std::vector<std::string_view> named;
  for (std::string_view kind : kDistKinds)
    if (obj.has(kind)) named.push_back(kind);
  if (named.size() != 1)
    obj.fail(fmt::format(
        "expected exactly one distribution kind of {}; got {}", fmt::join(kDistKinds, ", "),
        named.empty() ? std::string("none") : fmt::format("{}", fmt::join(named, ", "))));

  const std::string_view kind = named.front();
  if (kind == "fixed") {
    dist.kind = LengthDist::Kind::kFixed;
    dist.lo_tokens = dist.hi_tokens = obj.at("fixed").int_in_range(1, kMaxRequestTokens);
  } else if (kind == "uniform") {
    dist.kind = LengthDist::Kind::kUniform;
    const JsonValue bounds = obj.at("uniform");
    const auto items = bounds.array();
    if (items.size() != 2)
      bounds.fail(fmt::format("expected [lo, hi], got {} values", items.size()));
    dist.lo_tokens = items[0].int_in_range(1, kMaxRequestTokens);
    dist.hi_tokens = items[1].int_in_range(1, kMaxRequestTokens);
    if (dist.hi_tokens < dist.lo_tokens)
      bounds.fail(fmt::format("hi ({}) must be >= lo ({})", dist.hi_tokens, dist.lo_tokens));
  } else if (kind == "lognormal") {
    dist.kind = LengthDist::Kind::kLognormal;
    const JsonValue params = obj.at("lognormal");
    const auto items = params.array();
    if (items.size() != 2)
      params.fail(fmt::format("expected [mu, sigma], got {} values", items.size()));
    dist.mu = items[0].as_double();
    dist.sigma = items[1].nonnegative_double();
    dist.lo_tokens = 1;
    dist.hi_tokens = kMaxRequestTokens;
    if (auto min = obj.maybe("min")) dist.lo_tokens = min->int_in_range(1, kMaxRequestTokens);
    if (auto max = obj.maybe("max")) {
      dist.hi_tokens = max->int_in_range(1, kMaxRequestTokens);
      if (dist.hi_tokens < dist.lo_tokens)
        max->fail(fmt::format("must be >= min ({}), got {}", dist.lo_tokens, dist.hi_tokens));
    }
  } else {
    dist.kind = LengthDist::Kind::kEmpirical;
    dist.path = resolve_input_path(base_dir, obj.at("empirical"));
    dist.column = obj.at("column").as_string();
  }
  obj.finish();
  return dist;
}

std::vector<std::vector<int64_t>> read_csv_columns(const std::string& path,
                                                   const std::vector<std::string>& columns) {
  detail::LineReader reader(path);
  const auto header = reader.next_line();
  if (!header) throw InputError(fmt::format("{}: empty file, expected a CSV header", path));
  const auto names = detail::split_commas(*header);
  std::vector<size_t> indices;
  for (const std::string& column : columns) {
    const auto it = std::find(names.begin(), names.end(), column);
    if (it == names.end())
      reader.fail(
          fmt::format("missing column '{}'; header has: {}", column, fmt::join(names, ", ")));
    indices.push_back(static_cast<size_t>(it - names.begin()));
  }
  std::vector<std::vector<int64_t>> values(columns.size());
  while (const auto line = reader.next_line()) {
    const auto fields = detail::split_commas(*line);
    if (fields.size() != names.size())
      reader.fail(
          fmt::format("expected {} comma-separated fields, got {}", names.size(), fields.size()));
    for (size_t c = 0; c < columns.size(); ++c) {
      const std::string_view text = fields[indices[c]];
      int64_t v = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (text.empty() || text.front() == '-' || ec != std::errc() ||
          end != text.data() + text.size())
        reader.fail(fmt::format("{}: expected a non-negative integer, got '{}'", columns[c], text));
      if (v > kMaxRequestTokens)
        reader.fail(fmt::format("{}: {} tokens is more than the {} a request may have", columns[c],
                                v, kMaxRequestTokens));
      values[c].push_back(v);
    }
  }
  if (values.front().empty()) throw InputError(fmt::format("{}: no data rows", path));
  return values;
}

LengthSampler::LengthSampler(LengthDist input, LengthDist output, uint64_t seed)
    : input_(std::move(input)),
      output_(std::move(output)),
      input_rng_(seed, "input_lengths"),
      output_rng_(seed, "output_lengths") {
  using Kind = LengthDist::Kind;
  if (input_.kind == Kind::kEmpirical && output_.kind == Kind::kEmpirical &&
      input_.path == output_.path) {
    paired_ = true;
    auto columns = read_csv_columns(input_.path, {input_.column, output_.column});
    input_values_ = std::move(columns[0]);
    output_values_ = std::move(columns[1]);
    return;
  }
  if (input_.kind == Kind::kEmpirical)
    input_values_ = std::move(read_csv_columns(input_.path, {input_.column})[0]);
  if (output_.kind == Kind::kEmpirical)
    output_values_ = std::move(read_csv_columns(output_.path, {output_.column})[0]);
}

int64_t LengthSampler::sample(const LengthDist& dist, const std::vector<int64_t>& values,
                              Rng& rng) {
  switch (dist.kind) {
    case LengthDist::Kind::kFixed:
      return dist.lo_tokens;
    case LengthDist::Kind::kUniform:
      return rng.uniform_int(dist.lo_tokens, dist.hi_tokens);
    case LengthDist::Kind::kLognormal: {
      // Clamp in double first: exp() of a wide normal can exceed any int64.
      const double x = std::round(rng.lognormal(dist.mu, dist.sigma));
      const double clamped =
          std::clamp(x, static_cast<double>(dist.lo_tokens), static_cast<double>(dist.hi_tokens));
      if (clamped >= 9.2e18) return dist.hi_tokens;
      return std::clamp(static_cast<int64_t>(clamped), dist.lo_tokens, dist.hi_tokens);
    }
    case LengthDist::Kind::kEmpirical: {
      const auto row = rng.uniform_int(0, static_cast<int64_t>(values.size()) - 1);
      return std::max<int64_t>(values[static_cast<size_t>(row)], 1);
    }
  }
  return 1;
}

LengthSampler::Draw LengthSampler::draw() {
  if (paired_) {
    const auto row = static_cast<size_t>(
        input_rng_.uniform_int(0, static_cast<int64_t>(input_values_.size()) - 1));
    return {std::max<int64_t>(input_values_[row], 1), std::max<int64_t>(output_values_[row], 1)};
  }
  const int64_t prompt = sample(input_, input_values_, input_rng_);
  const int64_t output = sample(output_, output_values_, output_rng_);
  return {prompt, output};
}

}  // namespace servesim

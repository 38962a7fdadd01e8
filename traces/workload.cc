#include "traces/workload.h"

#include <fmt/format.h>

#include <string_view>
#include <utility>

#include "traces/closed_loop.h"
#include "traces/length_dist.h"
#include "traces/mapped_trace.h"
#include "traces/open_loop.h"
#include "traces/synthetic_streams.h"
#include "traces/trace_streams.h"

namespace servesim {
namespace {

/// /columns and /time_unit of a csv or jsonl trace: which of the file's columns or keys holds
/// each field of a request.
TraceColumns parse_columns(JsonObject& w) {
  TraceColumns c;
  JsonObject cols = w.at("columns").object();
  auto name = [](const JsonValue& v) {
    std::string text = v.as_string();
    if (text.empty()) v.fail("must name a column or key, got an empty string");
    return text;
  };
  c.arrival = name(cols.at("arrival"));
  c.prompt_tokens = name(cols.at("prompt_tokens"));
  c.output_tokens = name(cols.at("output_tokens"));
  if (auto v = cols.maybe("session")) c.session = name(*v);
  std::optional<JsonValue> prefix = cols.maybe("prefix_hashes");
  if (prefix) c.prefix_hashes = name(*prefix);
  cols.finish();
  const std::string unit = w.at("time_unit").one_of({"s", "ms", "us", "ns", "datetime"});
  c.arrival_unit_ns = unit == "s"    ? 1'000'000'000
                      : unit == "ms" ? 1'000'000
                      : unit == "us" ? 1'000
                      : unit == "ns" ? 1
                                     : 0;
  if (auto v = w.maybe("prefix_block_tokens")) {
    if (!prefix) v->fail("needs /columns/prefix_hashes: the ids whose blocks it sizes");
    c.prefix_block_tokens = v->int_in_range(1, kMaxRequestTokens);
  } else if (prefix) {
    prefix->fail("needs prefix_block_tokens beside columns: the tokens each id stands for");
  }
  return c;
}

std::unique_ptr<Workload> make_trace(JsonObject& w, const std::string& base_dir) {
  const std::string format =
      w.at("format").one_of({"azure_csv", "burstgpt_csv", "csv", "jsonl", "mooncake_jsonl"});
  const std::string path = resolve_input_path(base_dir, w.at("path"));
  std::optional<TraceColumns> columns;
  if (format == "csv" || format == "jsonl") columns = parse_columns(w);
  if (format == "burstgpt_csv") columns = burstgpt_columns();
  // CSV formats only: elsewhere the key is unknown (and so refused).
  if (auto v = columns && format != "jsonl" ? w.maybe("keep_rows_where") : std::nullopt) {
    JsonObject where = v->object();
    for (const std::string& key : where.keys())
      columns->keep_rows_where.emplace_back(key, where.at(key).as_string());
    where.finish();
  }
  TraceReplay replay;
  if (auto v = w.maybe("time_scale")) replay.time_scale = v->positive_double();
  // "More load" as a factor: rate_scale 2 replays the trace at twice its arrival rate.
  if (auto v = w.maybe("rate_scale")) replay.time_scale /= v->positive_double();
  if (auto v = w.maybe("start_s")) replay.start = Time::from_s(v->seconds());
  if (auto v = w.maybe("max_requests"))
    replay.max_requests = v->int_in_range(1, kMaxWorkloadRequests);
  w.finish();
  std::unique_ptr<ArrivalStream> stream;
  if (format == "azure_csv")
    stream = std::make_unique<AzureCsvStream>(path, replay);
  else if (format == "mooncake_jsonl")
    stream = std::make_unique<MooncakeJsonlStream>(path, replay);
  else if (format == "burstgpt_csv" || format == "csv")
    stream = std::make_unique<CsvTraceStream>(path, *columns, replay);
  else
    stream = std::make_unique<JsonlTraceStream>(path, *columns, replay);
  return std::make_unique<OpenLoopWorkload>(std::move(stream));
}

/// Poisson arrivals, or with `gamma` true, gamma gaps of coefficient of variation /cv.
std::unique_ptr<Workload> make_poisson(JsonObject& w, const std::string& base_dir, uint64_t seed,
                                       bool gamma) {
  const double rate_per_s = w.at("rate_per_s").positive_double();
  // Up to 100: shape 1e-4, gaps so bursty that a whole run is a handful of bursts.
  const double cv = gamma ? w.at("cv").number_in_range(0.01, 100.0) : 1.0;
  std::optional<int64_t> requests;
  if (auto v = w.maybe("requests")) requests = v->int_in_range(1, kMaxWorkloadRequests);
  std::optional<Time> duration;
  if (auto v = w.maybe("duration_s")) duration = Time::from_s(v->positive_seconds());
  if (!requests && !duration) w.fail("needs 'requests' or 'duration_s' (or both) to end");
  LengthDist input = parse_length_dist(w.at("input_tokens"), base_dir);
  LengthDist output = parse_length_dist(w.at("output_tokens"), base_dir);
  w.finish();
  LengthSampler lengths(std::move(input), std::move(output), seed);
  std::string where = fmt::format("{}: {}", w.value().file(), w.value().pointer());
  if (gamma)
    return std::make_unique<OpenLoopWorkload>(std::make_unique<GammaStream>(
        rate_per_s, cv, requests, duration, std::move(lengths), seed, std::move(where)));
  return std::make_unique<OpenLoopWorkload>(std::make_unique<PoissonStream>(
      rate_per_s, requests, duration, std::move(lengths), seed, std::move(where)));
}

std::unique_ptr<Workload> make_closed_loop(JsonObject& w, const std::string& base_dir,
                                           uint64_t seed) {
  // Each client is an event in flight: a million is far beyond any benchmark's.
  const int64_t concurrency = w.at("concurrency").int_in_range(1, 1'000'000);
  // Benchmark form (genai-perf/aiperf): `warmup_per_client` x N warm-up requests, a barrier,
  // then `requests_per_client` x N measured ones opening on a burst of all N clients.
  int64_t per_client = 10;
  if (auto v = w.maybe("requests_per_client"))
    per_client = v->int_in_range(1, kMaxWorkloadRequests / concurrency);
  int64_t requests = concurrency * per_client;
  int64_t warmup = 0;
  bool barrier = false;
  if (auto v = w.maybe("warmup_per_client")) {
    if (w.maybe("warmup_requests")) v->fail("give warmup_per_client or warmup_requests, not both");
    warmup = concurrency * v->int_in_range(0, kMaxWorkloadRequests / concurrency);
    barrier = true;
  }
  if (auto v = w.maybe("requests")) {
    if (w.maybe("requests_per_client")) v->fail("give requests or requests_per_client, not both");
    requests = v->int_in_range(1, kMaxWorkloadRequests);
  }
  if (auto v = w.maybe("warmup_requests")) {
    warmup = v->nonnegative_int();
    if (warmup >= requests)
      v->fail(fmt::format("must be < requests ({}), got {}", requests, warmup));
  }
  if (barrier) requests += warmup;  // per-client counts are of measured requests
  int64_t distinct_prompts = 0;
  if (auto v = w.maybe("distinct_prompts"))
    distinct_prompts = v->int_in_range(0, kMaxWorkloadRequests);
  // aiperf's --dataset-sampling-strategy, and its default (InputDefaults in
  // aiperf/common/config/config_defaults.py: DATASET_SAMPLING_STRATEGY = SHUFFLE).
  PromptOrder prompt_order = PromptOrder::kShuffle;
  if (auto v = w.maybe("prompt_order")) {
    const std::string order = v->as_string();
    if (order == "sequential")
      prompt_order = PromptOrder::kSequential;
    else if (order == "random")
      prompt_order = PromptOrder::kRandom;
    else if (order != "shuffle")
      v->fail(fmt::format(R"(expected "shuffle", "sequential" or "random", got "{}")", order));
    if (distinct_prompts == 0) v->fail("needs distinct_prompts > 0 (a pool to draw from)");
  }
  LengthDist input = parse_length_dist(w.at("input_tokens"), base_dir);
  LengthDist output = parse_length_dist(w.at("output_tokens"), base_dir);
  Time think_time{};
  if (auto v = w.maybe("think_time_s")) think_time = Time::from_s(v->seconds());
  double output_spread = 0;
  if (auto v = w.maybe("output_spread")) output_spread = v->number_in_range(0, 0.5);
  w.finish();
  return std::make_unique<ClosedLoopWorkload>(
      concurrency, requests, think_time, warmup,
      LengthSampler(std::move(input), std::move(output), seed), barrier, distinct_prompts,
      fmt::format("{}: {}", w.value().file(), w.value().pointer()), output_spread, seed,
      prompt_order);
}

std::unique_ptr<Workload> make_sessions(JsonObject& w, const std::string& base_dir, uint64_t seed) {
  const int64_t sessions = w.at("sessions").int_in_range(1, kMaxWorkloadRequests);
  const int64_t turns = w.at("turns").int_in_range(1, kMaxWorkloadRequests / sessions);
  const double rate_per_s = w.at("rate_per_s").positive_double();
  const Time think_time = Time::from_s(w.at("think_time_s").seconds());
  LengthDist input = parse_length_dist(w.at("input_tokens"), base_dir);
  LengthDist output = parse_length_dist(w.at("output_tokens"), base_dir);
  w.finish();
  return std::make_unique<OpenLoopWorkload>(std::make_unique<SessionStream>(
      sessions, turns, rate_per_s, think_time,
      LengthSampler(std::move(input), std::move(output), seed), seed,
      fmt::format("{}: {}", w.value().file(), w.value().pointer())));
}

}  // namespace

std::unique_ptr<Workload> make_workload(JsonObject& workload, const std::string& base_dir,
                                        uint64_t seed) {
  const JsonValue kind_value = workload.at("kind");
  const std::string kind = kind_value.as_string();
  if (kind == "trace") return make_trace(workload, base_dir);
  if (kind == "poisson") return make_poisson(workload, base_dir, seed, false);
  if (kind == "gamma") return make_poisson(workload, base_dir, seed, true);
  if (kind == "closed_loop") return make_closed_loop(workload, base_dir, seed);
  if (kind == "sessions") return make_sessions(workload, base_dir, seed);
  kind_value.fail(fmt::format(
      "unknown workload kind '{}'; valid: closed_loop, gamma, poisson, sessions, trace", kind));
}

}  // namespace servesim

#include "traces/workload.h"

#include <fmt/format.h>

#include <string_view>
#include <utility>

#include "traces/closed_loop.h"
#include "traces/length_dist.h"
#include "traces/open_loop.h"
#include "traces/synthetic_streams.h"
#include "traces/trace_streams.h"

namespace servesim {
namespace {

std::unique_ptr<Workload> make_trace(JsonObject& w, const std::string& base_dir) {
  const std::string format = w.at("format").one_of({"azure_csv", "mooncake_jsonl"});
  const std::string path = resolve_input_path(base_dir, w.at("path"));
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
  else
    stream = std::make_unique<MooncakeJsonlStream>(path, replay);
  return std::make_unique<OpenLoopWorkload>(std::move(stream));
}

std::unique_ptr<Workload> make_poisson(JsonObject& w, const std::string& base_dir, uint64_t seed) {
  const double rate_per_s = w.at("rate_per_s").positive_double();
  std::optional<int64_t> requests;
  if (auto v = w.maybe("requests")) requests = v->int_in_range(1, kMaxWorkloadRequests);
  std::optional<Time> duration;
  if (auto v = w.maybe("duration_s")) duration = Time::from_s(v->positive_seconds());
  if (!requests && !duration) w.fail("needs 'requests' or 'duration_s' (or both) to end");
  LengthDist input = parse_length_dist(w.at("input_tokens"), base_dir);
  LengthDist output = parse_length_dist(w.at("output_tokens"), base_dir);
  w.finish();
  return std::make_unique<OpenLoopWorkload>(std::make_unique<PoissonStream>(
      rate_per_s, requests, duration, LengthSampler(std::move(input), std::move(output), seed),
      seed, fmt::format("{}: {}", w.value().file(), w.value().pointer())));
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
  LengthDist input = parse_length_dist(w.at("input_tokens"), base_dir);
  LengthDist output = parse_length_dist(w.at("output_tokens"), base_dir);
  Time think_time{};
  if (auto v = w.maybe("think_time_s")) think_time = Time::from_s(v->seconds());
  w.finish();
  return std::make_unique<ClosedLoopWorkload>(
      concurrency, requests, think_time, warmup,
      LengthSampler(std::move(input), std::move(output), seed), barrier, distinct_prompts,
      fmt::format("{}: {}", w.value().file(), w.value().pointer()));
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
  if (kind == "poisson") return make_poisson(workload, base_dir, seed);
  if (kind == "closed_loop") return make_closed_loop(workload, base_dir, seed);
  if (kind == "sessions") return make_sessions(workload, base_dir, seed);
  kind_value.fail(fmt::format(
      "unknown workload kind '{}'; valid: closed_loop, poisson, sessions, trace", kind));
}

}  // namespace servesim

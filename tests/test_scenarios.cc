// Whole-scenario checks on the shipped seed scenarios: the effect of a policy, in direction and
// size, and determinism.

#include <catch2/catch.hpp>
#include <filesystem>

#include "test_support.h"

using namespace servesim;
using namespace servesim::testing;
using nlohmann::json;

TEST_CASE(
    "Q11: size-class routing beats round robin on p99 E2E and never misplaces large "
    "requests",
    "[scenario][q11]") {
  const json base = load_scenario("seed_q11_four_node.json");
  const RunOutput size_class = run_doc(base);
  json rr_doc = base;
  rr_doc["policies"]["router"]["name"] = "round_robin";
  const RunOutput round_robin = run_doc(rr_doc);

  const auto& sc = size_class.result["summary"];
  const auto& rr = round_robin.result["summary"];
  CHECK(sc["completed"].get<int>() == 600);
  CHECK(sc["dropped"].get<int>() == 0);
  // Round robin sends large prompts to 8 GB GPUs whose KV holds ~11k tokens: those are
  // preempted or refused, and the tail grows. vLLM's prefix cache keeps a preempted request's
  // blocks, so it resumes rather than recomputes (the thrash without that is checked in
  // test_disaggregation.cc). Measured: p99 E2E 15.2 s vs 23.7 s (1.56x), p99 TTFT 1.58 s vs
  // 13.1 s (8.3x); the bounds keep about half of each effect.
  CHECK(rr["p99_e2el_ms"].get<double>() > 1.25 * sc["p99_e2el_ms"].get<double>());
  CHECK(rr["p99_ttft_ms"].get<double>() > 4.0 * sc["p99_ttft_ms"].get<double>());
  CHECK(rr["preemptions"].get<int>() > sc["preemptions"].get<int>());

  // Capacity of each instance, then every request's placement.
  std::map<std::string, int64_t> capacity;
  for (const auto& inst : size_class.result["instances"])
    capacity[inst["name"].get<std::string>()] = inst["kv_capacity_tokens"].get<int64_t>();
  int large = 0;
  for (const auto& r : size_class.result["requests"]) {
    const int64_t total = r["prompt_tokens"].get<int64_t>() + r["output_tokens"].get<int64_t>();
    CHECK(total <= capacity[r["instance"].get<std::string>()]);
    if (total > 4096) {
      ++large;
      CHECK(r["instance"] == "C4");
    }
  }
  CHECK(large > 20);  // the workload really has large requests
  int misplaced_rr = 0;
  for (const auto& r : round_robin.result["requests"]) {
    const int64_t total = r["prompt_tokens"].get<int64_t>() + r["output_tokens"].get<int64_t>();
    if (total > capacity[r["instance"].get<std::string>()]) ++misplaced_rr;
  }
  CHECK(misplaced_rr > 0);  // the check above is not vacuous
}

TEST_CASE("same scenario and seed give byte-identical result JSON", "[scenario][determinism]") {
  const std::string scenario = source_path("scenarios/seed_q11_four_node.json");
  const std::string a = tmp_path("det_a.json"), b = tmp_path("det_b.json"),
                    c = tmp_path("det_c.json");
  // The output path is part of the recorded command line, so run from the same path twice.
  REQUIRE(run_cli("run " + scenario + " -q -o " + a) == 0);
  std::filesystem::rename(a, b);
  REQUIRE(run_cli("run " + scenario + " -q -o " + a) == 0);
  const std::string first = read_text(a), second = read_text(b);
  CHECK(first.size() > 10000);
  CHECK(first == second);
  // A different seed changes the workload, so the output must differ.
  REQUIRE(run_cli("run " + scenario + " -q -o " + c + " --seed 2") == 0);
  CHECK(read_text(c) != first);
}

TEST_CASE("result JSON carries the summary keys of benchmark_serving", "[scenario]") {
  const RunOutput out = run_doc(load_scenario("seed_q11_four_node.json"));
  const auto& s = out.result["summary"];
  for (const char* key : {"completed", "request_throughput", "output_throughput"})
    CHECK(s.contains(key));
  for (const char* stat : {"mean_", "median_", "p90_", "p99_"})
    for (const char* metric : {"ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"})
      CHECK(s.contains(std::string(stat) + metric));
  // Percentiles are ordered and positive.
  CHECK(s["median_ttft_ms"].get<double>() > 0);
  CHECK(s["median_ttft_ms"].get<double>() <= s["p90_ttft_ms"].get<double>());
  CHECK(s["p90_ttft_ms"].get<double>() <= s["p99_ttft_ms"].get<double>());
  // Output throughput is generated tokens over the duration.
  CHECK(s["output_throughput"].get<double>() ==
        Approx(s["total_output_tokens"].get<double>() / s["duration_s"].get<double>()));
  // Time series cover the run; the KV fraction stays within [0, 1].
  const auto& ts = out.result["timeseries"];
  CHECK(ts["time_s"].size() > 100);
  for (const auto& inst : ts["instances"])
    for (const auto& v : inst["kv_used_fraction"]) {
      CHECK(v.get<double>() >= 0);
      CHECK(v.get<double>() <= 1);
    }
  CHECK(out.result["links"].size() > 0);  // C4's TP=2 all-reduces cross NVLink
  CHECK(out.result["links"][0]["kind"] == "nvlink");
}

TEST_CASE("routing on multi-turn traffic: cache-aware routing reuses more prefix and queues more",
          "[scenario][routing]") {
  // The Mooncake conversation trace on eight H100 replicas with prefix caching. SGLang's
  // cache-aware policy sends a turn where its history is cached: reuse measured 14.9% of prompt
  // tokens against 5.8% under least-loaded routing (2x asserted). At this load (replicas busy
  // 82-90% of the time) the affinity concentrates work: p99 queueing 4.75 s against 0.22 s and
  // mean TTFT 682 ms against 508 ms, so least-loaded wins on latency here (asserted in
  // direction, with 5x on the queue tail that moves most).
  const json base = load_scenario("mooncake_routing_8xh100.json");
  const RunOutput least = run_doc(base);
  json cache_doc = base;
  cache_doc["policies"]["router"]["name"] = "cache_aware";
  const RunOutput cache = run_doc(cache_doc);
  const auto& ll = least.result["summary"];
  const auto& ca = cache.result["summary"];
  CHECK(ll["completed"] == 12031);
  CHECK(ca["completed"] == 12031);
  CHECK(ca["prefix_reuse_fraction"].get<double>() > 2 * ll["prefix_reuse_fraction"].get<double>());
  CHECK(ca["p99_queue_ms"].get<double>() > 5 * ll["p99_queue_ms"].get<double>());
  CHECK(ca["mean_ttft_ms"].get<double>() > ll["mean_ttft_ms"].get<double>());
  // Requests per replica under least-loaded routing stay within 10% of each other.
  int64_t most = 0, least_count = INT64_MAX;
  for (const auto& inst : least.result["instances"]) {
    most = std::max<int64_t>(most, inst["requests"].get<int64_t>());
    least_count = std::min<int64_t>(least_count, inst["requests"].get<int64_t>());
  }
  CHECK(static_cast<double>(most) < 1.1 * static_cast<double>(least_count));
}

// SLO attainment, goodput and per-replica figures, checked against the per-request records of
// the same run: the records carry the very doubles the metrics compare, so counts match exactly.

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "run/result.h"
#include "sim/stats.h"
#include "test_support.h"

namespace servesim {
namespace {

using testing::load_scenario;
using testing::run_cli;
using testing::run_doc;
using testing::source_path;

/// Q11: four replicas of different speeds, 600 Poisson requests; SLOs that some requests miss.
nlohmann::json q11_with_slo() {
  nlohmann::json doc = load_scenario("seed_q11_four_node.json");
  doc["slo"] = {{"ttft_ms", 400.0}, {"tpot_ms", 60.0}, {"e2el_ms", 8000.0}};
  return doc;
}

TEST_CASE("SLO attainment counts the requests that meet each SLO", "[slo]") {
  const RunOutput out = run_doc(q11_with_slo(), "seed_q11_four_node.json");
  const auto& s = out.result["summary"];
  const auto& a = s["slo_attainment"];
  uint64_t requests = 0, ttft = 0, tpot = 0, e2el = 0, all = 0;
  for (const auto& r : out.result["requests"]) {
    ++requests;
    if (r["status"] != "finished") continue;  // a dropped request meets no SLO
    const double t = r["ttft_ms"], e = r["e2el_ms"];
    const int64_t n = r["generated_tokens"];
    const double p = n > 1 ? (e - t) / static_cast<double>(n - 1) : 0.0;
    ttft += t <= 400.0;
    tpot += p <= 60.0;
    e2el += e <= 8000.0;
    all += t <= 400.0 && p <= 60.0 && e <= 8000.0;
  }
  REQUIRE(a["requests"] == requests);
  // Each SLO is missed by some and met by others, so the checks below can fail.
  CHECK(ttft > 0);
  CHECK(ttft < requests);
  CHECK(e2el < requests);
  CHECK(all < ttft);
  CHECK(a["ttft"].get<double>() == static_cast<double>(ttft) / static_cast<double>(requests));
  CHECK(a["tpot"].get<double>() == static_cast<double>(tpot) / static_cast<double>(requests));
  CHECK(a["e2el"].get<double>() == static_cast<double>(e2el) / static_cast<double>(requests));
  CHECK(a["all"].get<double>() == static_cast<double>(all) / static_cast<double>(requests));
  CHECK(s["request_goodput"].get<double>() ==
        Approx(static_cast<double>(all) / s["duration_s"].get<double>()).epsilon(1e-12));

  // Only the SLOs given are reported; without /slo there is no attainment at all.
  nlohmann::json only_e2el = load_scenario("seed_q11_four_node.json");
  only_e2el["slo"] = {{"e2el_ms", 8000.0}};
  const auto a2 = run_doc(only_e2el, "seed_q11_four_node.json").result["summary"]["slo_attainment"];
  CHECK(a2["e2el"] == a["e2el"]);
  CHECK(a2["all"] == a["e2el"]);
  CHECK_FALSE(a2.contains("ttft"));
  const auto plain = run_doc(load_scenario("seed_q11_four_node.json"), "seed_q11_four_node.json");
  CHECK_FALSE(plain.result["summary"].contains("slo_attainment"));
  CHECK_FALSE(plain.result["summary"].contains("request_goodput"));
}

TEST_CASE("each replica reports the latencies and throughput of its own requests", "[slo]") {
  const RunOutput out = run_doc(q11_with_slo(), "seed_q11_four_node.json");
  const auto& s = out.result["summary"];
  std::map<std::string, std::vector<double>> e2el_by_replica, ttft_by_replica;
  std::map<std::string, int64_t> tokens_by_replica;
  for (const auto& r : out.result["requests"]) {
    if (r["status"] != "finished") continue;
    e2el_by_replica[r["instance"]].push_back(r["e2el_ms"]);
    ttft_by_replica[r["instance"]].push_back(r["ttft_ms"]);
    tokens_by_replica[r["instance"]] += r["generated_tokens"].get<int64_t>();
  }
  const double duration_s = s["duration_s"];
  uint64_t completed = 0;
  double output_throughput = 0;
  REQUIRE(out.result["instances"].size() == 4);
  for (const auto& inst : out.result["instances"]) {
    const auto& rs = inst["summary"];
    const std::string name = inst["name"];
    auto e2el = e2el_by_replica[name];
    auto ttft = ttft_by_replica[name];
    REQUIRE(e2el.size() > 10);  // every replica serves some: the per-replica figures differ
    std::sort(e2el.begin(), e2el.end());
    std::sort(ttft.begin(), ttft.end());
    CHECK(rs["completed"] == e2el.size());
    CHECK(rs["p99_e2el_ms"].get<double>() == percentile_sorted(e2el, 99));
    CHECK(rs["median_ttft_ms"].get<double>() == percentile_sorted(ttft, 50));
    CHECK(rs["percentiles_exact"] == true);
    CHECK(rs["output_throughput"].get<double>() ==
          static_cast<double>(tokens_by_replica[name]) / duration_s);
    CHECK(rs["slo_attainment"]["all"].get<double>() >= 0.0);
    completed += rs["completed"].get<uint64_t>();
    output_throughput += rs["output_throughput"].get<double>();
  }
  CHECK(completed == s["completed"]);
  // Sums of four doubles that divide the same integers: equal to rounding.
  CHECK(output_throughput == Approx(s["output_throughput"].get<double>()).epsilon(1e-12));
}

TEST_CASE("the console table shows goodput and SLO attainment when SLOs are set",
          "[slo][console]") {
  const RunOutput out = run_doc(q11_with_slo(), "seed_q11_four_node.json");
  const std::string table = summary_table("q11", out.result["summary"]);
  CHECK_THAT(table, Catch::Contains("Request goodput (req/s):"));
  CHECK_THAT(table, Catch::Contains("SLO attainment, TTFT (%):"));
  CHECK_THAT(table, Catch::Contains("SLO attainment, E2EL (%):"));
  CHECK_THAT(table, Catch::Contains("SLO attainment, all SLOs (%):"));
  const auto plain = run_doc(load_scenario("seed_q11_four_node.json"), "seed_q11_four_node.json");
  CHECK_THAT(summary_table("q11", plain.result["summary"]), !Catch::Contains("goodput"));
}

TEST_CASE("/slo/e2el_ms is read and checked like the other SLOs", "[slo][scenario]") {
  std::string err;
  CHECK(run_cli("run " + source_path("scenarios/seed_q11_four_node.json") +
                    " -q -o /dev/null --set '/slo={\"e2el_ms\": 0}'",
                &err) == 2);
  CHECK_THAT(err, Catch::Contains("/slo/e2el_ms"));
  CHECK(run_cli("run " + source_path("scenarios/seed_q11_four_node.json") +
                " -q -o /dev/null --set '/slo={\"e2el_ms\": 5000}' --set /workload/requests=20") ==
        0);
}

}  // namespace
}  // namespace servesim

// servesim capacity: the highest arrival rate meeting SLOs, by bisection over runs.

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sim/error.h"
#include "test_support.h"
#include "tools/capacity.h"

using namespace servesim;
using namespace servesim::testing;

TEST_CASE("SLOs parse with explicit or implied bounds", "[tools][capacity]") {
  const Slo a = parse_slo("p99_ttft_ms=2000");
  CHECK(a.metric == "p99_ttft_ms");
  CHECK(a.upper);
  CHECK(a.limit == 2000);
  CHECK(a.met_by(1999));
  CHECK_FALSE(a.met_by(2001));
  const Slo b = parse_slo("request_throughput=1.5");
  CHECK_FALSE(b.upper);
  const Slo c = parse_slo("total_output_tokens>=10");
  CHECK_FALSE(c.upper);
  CHECK(parse_slo("p99_tpot_ms<=100").upper);
  CHECK_THROWS_AS(parse_slo("total_output_tokens=10"), InputError);  // no direction
  CHECK_THROWS_AS(parse_slo("p99_ttft_ms<2000"), InputError);
  CHECK_THROWS_AS(parse_slo("p99_ttft_ms=fast"), InputError);
}

TEST_CASE("capacity finds the highest rate meeting the SLOs", "[tools][capacity]") {
  const std::string q11 = source_path("scenarios/seed_q11_four_node.json");
  const std::string report_path = tmp_path("capacity_q11.json");
  REQUIRE(run_cli("capacity " + q11 +
                  " --set /workload/requests=200 --slo p99_ttft_ms=2000 --slo p99_tpot_ms=100"
                  " --lo 0.25 --hi 16 --tolerance 10% -q -o " +
                  report_path) == 0);
  const auto report = nlohmann::json::parse(read_text(report_path));
  CHECK(report["status"] == "found");
  CHECK(report["param"] == "/workload/rate_per_s");
  const double capacity = report["capacity"].get<double>();
  const double fails = report["bracket"]["fails"].get<double>();
  CHECK(capacity > 0.25);
  CHECK(capacity < 16);
  CHECK(fails > capacity);
  CHECK(fails - capacity <= 0.1 * fails);
  // The report holds every run; the capacity was measured to meet the SLOs, the bound above
  // measured to miss them.
  bool met_at_capacity = false, missed_above = false;
  for (const auto& run : report["runs"]) {
    const double v = run["value"].get<double>();
    if (v == capacity) met_at_capacity = run["meets_slos"];
    if (v == fails) missed_above = !run["meets_slos"].get<bool>();
    const bool meets = run["metrics"]["p99_ttft_ms"].get<double>() <= 2000 &&
                       run["metrics"]["p99_tpot_ms"].get<double>() <= 100;
    CHECK(run["meets_slos"] == meets);
    CHECK(run["command_line"].get<std::string>().find("--set /workload/rate_per_s=") !=
          std::string::npos);
  }
  CHECK(met_at_capacity);
  CHECK(missed_above);
  CHECK(report["runs"].size() <= 12);
}

TEST_CASE("capacity reports no value when even the lowest misses", "[tools][capacity]") {
  const std::string q11 = source_path("scenarios/seed_q11_four_node.json");
  const std::string report_path = tmp_path("capacity_none.json");
  CHECK(run_cli("capacity " + q11 +
                " --set /workload/requests=100 --slo p99_ttft_ms=1 --lo 1 "
                "--hi 2 -q -o " +
                report_path) == 1);
  const auto report = nlohmann::json::parse(read_text(report_path));
  CHECK(report["capacity"].is_null());
  CHECK(report["status"] == "none_meets");
  std::string err;
  CHECK(run_cli("capacity " + q11 + " --slo p99_tft_ms=1 --lo 1 --hi 2 -q", &err) == 2);
  CHECK(err.find("p99_tft_ms") != std::string::npos);
  CHECK(run_cli("capacity " + q11 + " --slo p99_ttft_ms=1 --param /workload/kind -q", &err) == 2);
}

TEST_CASE("capacity on a trace: rate_scale searched upward, time_scale downward, same answer",
          "[tools][capacity]") {
  // time_scale is "less load" when larger: the search must look for its lowest passing value
  // (it used to search upward and never converge). rate_scale is its inverse, "more load".
  const std::string azure = source_path("scenarios/azure_conv_8xh100.json");
  const std::string common = "capacity " + azure +
                             " --set /workload/max_requests=3000 --slo p99_ttft_ms=500"
                             " --tolerance 5% -q -o ";
  const std::string by_rate = tmp_path("capacity_rate_scale.json");
  const std::string by_time = tmp_path("capacity_time_scale.json");
  REQUIRE(run_cli(common + by_rate +
                  " --set /workload/rate_scale=1.0 --param /workload/rate_scale") == 0);
  REQUIRE(run_cli(common + by_time +
                  " --set /workload/time_scale=1.0 --param /workload/time_scale") == 0);
  const auto rate = nlohmann::json::parse(read_text(by_rate));
  const auto time = nlohmann::json::parse(read_text(by_time));
  CHECK(rate["direction"] == "maximize");
  CHECK(time["direction"] == "minimize");
  CHECK(rate["status"] == "found");
  CHECK(time["status"] == "found");
  // Minimizing, the value that meets lies above the one that fails.
  CHECK(time["bracket"]["meets"].get<double>() > time["bracket"]["fails"].get<double>());
  // The same load point from both sides: rate_scale x time_scale = 1 within the two 5% brackets.
  const double product = rate["capacity"].get<double>() * time["capacity"].get<double>();
  INFO("rate_scale " << rate["capacity"] << ", time_scale " << time["capacity"]);
  CHECK(product > 0.9);
  CHECK(product < 1.1);
  CHECK(rate["runs"].size() <= 16);
  CHECK(time["runs"].size() <= 16);
}

TEST_CASE("capacity stops a run that outgrows its wall-time bound, naming the value",
          "[tools][capacity]") {
  std::string err;
  CHECK(run_cli("capacity " + source_path("scenarios/azure_conv_8xh100.json") +
                    " --set /workload/max_requests=3000 --set /workload/rate_scale=1.0"
                    " --param /workload/rate_scale --slo p99_ttft_ms=500 -q --max-run-wall-s 1e-9",
                &err) == 2);
  CHECK_THAT(err, Catch::StartsWith("error: capacity: the run at /workload/rate_scale=0.25 passed "
                                    "1e-09 s of wall time"));
  CHECK_THAT(err, Catch::Contains("--max-run-wall-s"));
}

TEST_CASE("capacity over a replica count: the fewest replicas that meet the SLO",
          "[tools][capacity]") {
  // The Azure conversation trace at 8x its rate on up to eight H100 replicas generated from a
  // template: "count" is searched downward (fewer replicas, more load).
  nlohmann::json doc = load_scenario("azure_conv_8xh100.json");
  doc["instances"] = {{"template", {{"name", "r"}}}, {"count", 8}};
  const std::string path = tmp_path("capacity_count.json");
  {
    std::ofstream f(path);
    f << doc.dump(1);
  }
  const std::string report_path = tmp_path("capacity_count_report.json");
  REQUIRE(run_cli("capacity " + path +
                  " --set /workload/max_requests=3000 --set /workload/rate_scale=8.0"
                  " --param /instances/count --slo p99_ttft_ms=150 -q -o " +
                  report_path) == 0);
  const auto report = nlohmann::json::parse(read_text(report_path));
  CHECK(report["direction"] == "minimize");
  CHECK(report["status"] == "found");
  const int64_t fewest = report["capacity"].get<int64_t>();
  // Measured: 3 replicas meet (p99 TTFT 126 ms), 2 miss (638 ms); the whole search is 4 runs.
  CHECK(fewest >= 2);
  CHECK(fewest <= 6);
  CHECK(report["bracket"]["fails"].get<int64_t>() == fewest - 1);
  for (const auto& run : report["runs"])
    CHECK(run["meets_slos"].get<bool>() == (run["value"].get<int64_t>() >= fewest));

  // The template's copies are named and placed one per free GPU.
  RunOptions two;
  two.overrides = {"/instances/count=2", "/workload/max_requests=10"};
  const RunOutput out = run_scenario(doc, "capacity_count.json", source_path("scenarios"), two);
  REQUIRE(out.result["instances"].size() == 2);
  CHECK(out.result["instances"][0]["name"] == "r0");
  CHECK(out.result["instances"][1]["name"] == "r1");
  // More copies than GPUs: refused at the template, naming the count.
  std::string err;
  CHECK(run_cli("run " + path + " -q --set /instances/count=9 -o " + tmp_path("count9.json"),
                &err) == 2);
  CHECK_THAT(err, Catch::Contains("/instances/template: replica 8 of /instances/count needs"));
}

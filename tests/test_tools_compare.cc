// servesim compare: direction-aware regression checks on result files and on paired
// replications of a scenario.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "sim/error.h"
#include "test_support.h"
#include "tools/compare.h"

using namespace servesim;
using namespace servesim::testing;

namespace {

const std::string kQ11 = source_path("scenarios/seed_q11_four_node.json");

/// Q11 under `router`, in a file of its own per test (ctest -j runs tests side by side).
std::string q11_result(const std::string& router, const std::string& test) {
  const std::string path = tmp_path("compare_" + test + "_" + router + ".json");
  REQUIRE(run_cli("run " + kQ11 + " -q --set /policies/router/name=" + router + " -o " + path) ==
          0);
  return path;
}

nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(read_text(path));
}

}  // namespace

TEST_CASE("metric directions: latencies lower, throughputs higher, the rest neutral",
          "[tools][compare]") {
  CHECK(metric_direction("p99_ttft_ms") == MetricDirection::kLowerIsBetter);
  CHECK(metric_direction("mean_queue_ms") == MetricDirection::kLowerIsBetter);
  CHECK(metric_direction("dropped") == MetricDirection::kLowerIsBetter);
  CHECK(metric_direction("request_throughput") == MetricDirection::kHigherIsBetter);
  CHECK(metric_direction("request_goodput") == MetricDirection::kHigherIsBetter);
  CHECK(metric_direction("energy_per_output_token_j") == MetricDirection::kLowerIsBetter);
  CHECK(metric_direction("std_ttft_ms") == MetricDirection::kNeutral);
  CHECK(metric_direction("total_input_tokens") == MetricDirection::kNeutral);
}

TEST_CASE("tolerances: relative with %, absolute without", "[tools][compare]") {
  const Tolerance rel = parse_tolerance("5%", "t");
  CHECK(rel.relative);
  CHECK(rel.allowed(200) == Approx(10));
  CHECK(rel.allowed(-200) == Approx(10));
  const Tolerance abs = parse_tolerance("20", "t");
  CHECK_FALSE(abs.relative);
  CHECK(abs.allowed(1e6) == Approx(20));
  CHECK_THROWS_AS(parse_tolerance("five", "t"), InputError);
  CHECK_THROWS_AS(parse_tolerance("-1%", "t"), InputError);
  CHECK(t_quantile_975(1) == Approx(12.706));
  CHECK(t_quantile_975(4) == Approx(2.776));
  CHECK(t_quantile_975(100) == Approx(1.984).epsilon(1e-3));
}

TEST_CASE("compare catches a worse policy and passes an equal one", "[tools][compare]") {
  const std::string good = q11_result("size_class", "catch");
  const std::string bad = q11_result("round_robin", "catch");
  const std::string verdict = tmp_path("compare_verdict.json");  // this test only

  // Round robin against size-class routing on Q11: p99 TTFT regresses far beyond 5% (8x);
  // throughput falls by 1.5%, within its default tolerance.
  CHECK(run_cli("compare " + good + " " + bad +
                " --tolerance p99_ttft_ms=5% --metric request_throughput --verdict " + verdict) ==
        1);
  nlohmann::json v = read_json(verdict);
  CHECK(v["regressed"] == true);
  bool ttft_regressed = false, throughput_regressed = false;
  for (const auto& m : v["metrics"]) {
    if (m["metric"] == "p99_ttft_ms") {
      ttft_regressed = m["regressed"];
      CHECK(m["tolerance"] == "5%");
      CHECK(m["change"].get<double>() > 0);
    }
    if (m["metric"] == "request_throughput") {
      throughput_regressed = m["regressed"];
      CHECK(m["change"].get<double>() < 0);
    }
    if (m["direction"] == "neutral") CHECK(m["regressed"] == false);
  }
  CHECK(ttft_regressed);
  CHECK_FALSE(throughput_regressed);
  CHECK(v["base"]["file"] == good);

  // The same result, and an improvement, pass.
  CHECK(run_cli("compare " + good + " " + good + " --verdict " + verdict) == 0);
  CHECK(read_json(verdict)["regressed"] == false);
  CHECK(run_cli("compare " + bad + " " + good +
                " --metric p99_ttft_ms --metric "
                "request_throughput") == 0);
  // A generous absolute tolerance on the gated metric passes too.
  CHECK(run_cli("compare " + good + " " + bad +
                " --metric p99_ttft_ms --tolerance "
                "p99_ttft_ms=1e9") == 0);
}

TEST_CASE("compare with paired replications reports confidence intervals", "[tools][compare]") {
  const std::string verdict = tmp_path("compare_replications.json");
  const std::string common = "compare --scenario " + kQ11 +
                             " --set /workload/requests=300 --replications 5 -j 2 -q --verdict " +
                             verdict + " --metric p99_e2el_ms --metric request_throughput";
  CHECK(run_cli(common + " --base-set /policies/router/name=size_class --new-set "
                         "/policies/router/name=round_robin") == 1);
  nlohmann::json v = read_json(verdict);
  CHECK(v["servesim_compare"]["mode"] == "replications");
  CHECK(v["runs"].size() == 10);
  // Replication r uses the same seed on both sides.
  CHECK(v["runs"][0]["seed"] == v["runs"][5]["seed"]);
  CHECK(v["runs"][0]["seed"] != v["runs"][1]["seed"]);
  for (const auto& m : v["metrics"]) {
    CHECK(m["base_values"].size() == 5);
    CHECK(m["ci95_low"].get<double>() <= m["change"].get<double>());
    CHECK(m["change"].get<double>() <= m["ci95_high"].get<double>());
    if (m["metric"] == "p99_e2el_ms") CHECK(m["regressed"] == true);
  }

  // Identical sides: every paired difference is zero, so nothing regresses.
  CHECK(run_cli(common + " --base-set /policies/router/name=size_class --new-set "
                         "/policies/router/name=size_class") == 0);
  const auto equal_verdict = read_json(verdict);  // the loop must not iterate a temporary
  for (const auto& m : equal_verdict["metrics"]) {
    CHECK(m["ci95_low"].get<double>() == 0);
    CHECK(m["ci95_high"].get<double>() == 0);
  }
}

TEST_CASE("compare judges the default set when no metric is named, and says what differs",
          "[tools][compare]") {
  // Q11 at seeds 1 and 2: the same scenario, only the seed differs. Every numeric metric at 0%
  // flagged 19 "regressions" here; the default set's tolerances absorb this pair's noise (its
  // largest worsening is p99 TPOT +5.6%, under 10%), and the verdict says it is seed noise.
  const std::string s1 = tmp_path("compare_seed1.json"), s2 = tmp_path("compare_seed2.json");
  REQUIRE(run_cli("run " + kQ11 + " -q --seed 1 -o " + s1) == 0);
  REQUIRE(run_cli("run " + kQ11 + " -q --seed 2 -o " + s2) == 0);
  const std::string verdict = tmp_path("compare_default_set.json");
  CHECK(run_cli("compare " + s1 + " " + s2 + " -q --verdict " + verdict) == 0);
  nlohmann::json v = read_json(verdict);
  CHECK(v["metrics"].size() == default_metric_tolerances().size());
  REQUIRE(v["warnings"].size() == 1);
  CHECK(v["warnings"][0].get<std::string>().find("seed") != std::string::npos);
  // --all-metrics brings every metric back (here at the default set's tolerances or 0%).
  CHECK(run_cli("compare " + s1 + " " + s2 + " -q --all-metrics --verdict " + verdict) == 1);
  CHECK(read_json(verdict)["metrics"].size() > 30);

  // Another scenario: a warning names both hashes; a metric only one side has is listed, and
  // fails the comparison only when it was asked for.
  const std::string q9 = tmp_path("compare_q9.json");
  REQUIRE(run_cli("run " + source_path("scenarios/seed_q7_static_batching.json") + " -q -o " +
                  q9) == 0);
  CHECK(run_cli("compare " + s1 + " " + q9 +
                " -q --all-metrics --default-tolerance 1e12 "
                "--verdict " +
                verdict) == 0);
  v = read_json(verdict);
  CHECK(v["warnings"][0].get<std::string>().find("different scenarios") != std::string::npos);
  bool listed = false;
  for (const auto& o : v["one_sided"])
    if (o["metric"] == "misroutes") listed = o["only_in"] == "base" && o["named"] == false;
  CHECK(listed);
  CHECK(run_cli("compare " + s1 + " " + q9 + " -q --metric misroutes --verdict " + verdict) == 1);
  CHECK(read_json(verdict)["regressions"][0] == "misroutes");
}

TEST_CASE("paired replications: a regression in every pair is not hidden by one outlier",
          "[tools][compare]") {
  // p99 TTFT worse by 9-12% in each of five paired seeds, one pair by 300%: the outlier widens
  // the t-interval to include no change, but all five pairs worse has p = 1/32 under the sign
  // test, so it is a regression.
  const std::vector<double> base = {100, 100, 100, 100, 100}, worse = {110, 111, 109, 112, 400};
  const auto v = paired_verdict("p99_ttft_ms", base, worse, Tolerance{0.05, true});
  CHECK(v["ci95_low"].get<double>() < 5);  // the interval alone would not flag it
  CHECK(v["pairs_worse"] == 5);
  CHECK(v["sign_test_p"].get<double>() == Approx(1.0 / 32));
  CHECK(v["regressed"] == true);
  // Four of five worse: p = 6/32, and the interval straddles zero: not a regression.
  const auto mixed =
      paired_verdict("p99_ttft_ms", base, {110, 111, 109, 108, 95}, Tolerance{0.05, true});
  CHECK(mixed["sign_test_p"].get<double>() == Approx(6.0 / 32));
  CHECK(mixed["regressed"] == false);
  CHECK(sign_test_p(0, 5) == 1.0);
  CHECK(sign_test_p(3, 3) == Approx(0.125));
}

TEST_CASE("compare tables print wide and tiny values readably", "[tools][compare]") {
  CHECK(table_number(19.5) == "19.5");
  CHECK(table_number(123456789) == "123456789");
  CHECK(table_number(1234.56789) == "1234.57");
  CHECK(table_number(-0.25, true) == "-0.25");
  CHECK(table_number(3, true) == "+3");
  CHECK(table_number(0) == "0");
  CHECK(table_number(1.5e12) == "1.50000e+12");
  CHECK(table_number(1.23e-4) == "1.23000e-04");
}

TEST_CASE("compare rejects bad input with exit status 2", "[tools][compare]") {
  const std::string good = q11_result("size_class", "bad_input");
  std::string err;
  CHECK(run_cli("compare " + good + " " + good + " --tolerance p99_tft_ms=5%", &err) == 2);
  CHECK(err.find("p99_tft_ms") != std::string::npos);
  CHECK(run_cli("compare " + good + " " + good + " --tolerance p99_ttft_ms=lots", &err) == 2);
  CHECK(run_cli("compare " + good, &err) == 2);
}

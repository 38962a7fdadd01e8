// Metrics: the time series stay bounded however fine the sampling or long the span.
#include <catch2/catch.hpp>

#include "run/metrics.h"
#include "test_support.h"

using namespace servesim;
using namespace servesim::testing;
using nlohmann::json;

TEST_CASE("time series past their cap are thinned to every other sample at twice the interval",
          "[metrics]") {
  // About 300 simulated seconds sampled every millisecond: 300k samples, past the cap twice.
  json fine = load_scenario("seed_q11_four_node.json");
  fine["output"]["sample_interval_s"] = 1e-3;
  const auto thinned = run_doc(fine).result["timeseries"];
  const auto& t = thinned["time_s"];
  CHECK(t.size() <= Metrics::kMaxSamples + 1);
  CHECK(t.size() > Metrics::kMaxSamples / 2);
  const double interval = thinned["sample_interval_s"].get<double>();
  CHECK(interval == 4e-3);
  for (size_t i = 1; i < t.size(); ++i)
    REQUIRE(t[i].get<double>() - t[i - 1].get<double>() == Approx(interval).epsilon(1e-6));

  // The samples kept are those a run sampled at the final interval takes.
  json coarse = fine;
  coarse["output"]["sample_interval_s"] = interval;
  const auto direct = run_doc(coarse).result["timeseries"];
  const size_t n = std::min(t.size(), direct["time_s"].size());
  REQUIRE(n > 1000);
  for (size_t i = 0; i < n; ++i) {
    REQUIRE(t[i] == direct["time_s"][i]);
    for (size_t r = 0; r < 4; ++r) {
      REQUIRE(thinned["instances"][r]["kv_used_fraction"][i] ==
              direct["instances"][r]["kv_used_fraction"][i]);
      REQUIRE(thinned["instances"][r]["waiting"][i] == direct["instances"][r]["waiting"][i]);
    }
  }
  CHECK(thinned["p99_e2el_ms"].size() == t.size());
}

TEST_CASE("links count bytes per direction; busy time is bounded by the run", "[metrics][links]") {
  // Seed Q6: TP 2 inside a node (NVLink), TP 2 across two nodes (PCIe, NIC, switch) and PP 2
  // across them. A two-GPU ring sends each way alike; a pipeline only forward.
  const RunOutput out = run_doc(load_scenario("seed_q6_parallelism.json"), "seed_q6.json");
  const double makespan_s = out.result["summary"]["duration_s"].get<double>();
  int checked = 0;
  for (const auto& l : out.result["links"]) {
    INFO(l.dump());
    const double forward = l["bytes_forward"].get<double>(), back = l["bytes_back"].get<double>();
    CHECK(l["bytes"].get<double>() == forward + back);
    CHECK(l["busy_fraction"].get<double>() <= 1.0);
    CHECK(l["busy_fraction"].get<double>() == std::min(1.0, l["demand_fraction"].get<double>()));
    if (l["name"] == "A/0-A/1") {  // the NVLink ring of two
      CHECK(forward == back);
      ++checked;
    }
    if (l["name"] == "B/1-B/nic") {  // stage 1 of the pipeline hands on, nothing comes back
      CHECK(forward > 0);
      CHECK(back == 0);
      ++checked;
    }
    if (l["kind"] == "network") {  // the busier direction over the run, not both added
      CHECK(l["demand_fraction"].get<double>() ==
            Approx(std::max(forward, back) / l["bandwidth_bytes_per_s"].get<double>() /
                   makespan_s)
                .epsilon(1e-6));
      ++checked;
    }
  }
  CHECK(checked == 4);
}

// Faults (/faults): replica failures with re-routing or dropping, recovery, stragglers and
// degraded links. Every run checks its own conservation laws (an InvariantError fails the
// test); these tests assert what the faults do and how large the effect is.

#include <catch2/catch.hpp>
#include <cmath>
#include <map>

#include "models/power.h"
#include "sim/error.h"
#include "test_support.h"

using namespace servesim;
using namespace servesim::testing;
using nlohmann::json;

namespace {

const char* kScenario = "fault_replica_failure_azure.json";

nlohmann::ordered_json run_json(const json& doc, const std::string& label = "fault.json",
                                RunOptions options = {}) {
  return run_doc(doc, label, options).result;
}

json without_faults(json doc) {
  doc.erase("faults");
  return doc;
}

/// Mean TPOT per replica from the request records.
std::map<std::string, double> tpot_by_instance(const nlohmann::ordered_json& result) {
  std::map<std::string, double> sum, count;
  for (const auto& r : result["requests"]) {
    const double out = r["generated_tokens"].get<double>();
    if (r["status"] != "finished" || out < 2) continue;
    const std::string name = r["instance"];
    sum[name] += (r["e2el_ms"].get<double>() - r["ttft_ms"].get<double>()) / (out - 1);
    count[name] += 1;
  }
  for (auto& [name, s] : sum) s /= count[name];
  return sum;
}

std::string fault_error(json fault) {
  json doc = load_scenario(kScenario);
  doc["faults"] = json::array({fault});
  try {
    run_doc(doc, "fault.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE(
    "a replica failure near capacity: requests re-routed and recomputed, the rest fall behind",
    "[faults]") {
  const json doc = load_scenario(kScenario);
  const auto with = run_json(doc);
  const auto without = run_json(without_faults(doc));
  const auto& s = with["summary"];
  const auto& f = with["faults"];
  // Nothing is lost: every request finishes, the evicted ones on another replica.
  CHECK(s["arrived"] == s["completed"]);
  CHECK(s["dropped"] == 0);
  CHECK(f["requests_affected"].get<int64_t>() > 50);
  CHECK(f["requests_rerouted"] == f["requests_affected"]);
  CHECK(f["requests_dropped"] == 0);
  // Most evicted requests were running with their prompt (about 1k tokens here) in KV.
  CHECK(f["lost_tokens"].get<int64_t>() >= 100 * f["requests_affected"].get<int64_t>());
  REQUIRE(f["events"].size() == 1);
  CHECK(f["events"][0]["action"] == "fail");
  CHECK(f["events"][0]["time_s"].get<double>() == Approx(72.0));
  // r3 served only the first half: fewer requests than any replica that stayed up.
  int64_t r3 = 0, fewest_other = INT64_MAX;
  for (const auto& inst : with["instances"])
    if (inst["name"] == "r3")
      r3 = inst["requests"];
    else
      fewest_other = std::min(fewest_other, inst["requests"].get<int64_t>());
  CHECK(r3 < fewest_other * 9 / 10);
  // At 25x the trace's pace the eight replicas are near capacity, and seven are not enough.
  // Measured: p99 TTFT 214 -> 1,323 ms (6.2x), mean 53 -> 141 ms (2.7x); the bounds are half
  // the measured effect so that a recalibration of the cost model does not break the test
  // while the direction and rough size stay pinned.
  CHECK(s["p99_ttft_ms"].get<double>() >= 3.0 * without["summary"]["p99_ttft_ms"].get<double>());
  CHECK(s["mean_ttft_ms"].get<double>() >= 1.5 * without["summary"]["mean_ttft_ms"].get<double>());
  // The evicted requests pay most: their mean end-to-end latency exceeds everyone's.
  CHECK(f["mean_e2el_ms"].get<double>() > s["mean_e2el_ms"].get<double>());
  // Same scenario, same seed: the same bytes.
  CHECK(run_json(doc).dump() == with.dump());
}

TEST_CASE("with spare capacity the same failure costs little", "[faults]") {
  json doc = load_scenario(kScenario);
  doc["workload"]["time_scale"] = 0.2;  // five times slower than the near-capacity default
  doc["faults"][0]["at_s"] = 360;       // still half-way through
  const auto with = run_json(doc);
  const auto without = run_json(without_faults(doc));
  CHECK(with["faults"]["requests_rerouted"].get<int64_t>() > 0);
  CHECK(with["summary"]["dropped"] == 0);
  // Measured within 1% of the run without the failure; 20% leaves room for recalibration while
  // staying far below the near-capacity case's 6x.
  CHECK(with["summary"]["p99_ttft_ms"].get<double>() <=
        1.2 * without["summary"]["p99_ttft_ms"].get<double>());
}

TEST_CASE("a failure may drop its requests instead, and a replica may come back", "[faults]") {
  json doc = load_scenario(kScenario);
  doc["faults"][0]["requests"] = "drop";
  const auto dropped = run_json(doc);
  const auto& f = dropped["faults"];
  CHECK(f["requests_dropped"].get<int64_t>() > 0);
  CHECK(f["requests_rerouted"] == 0);
  CHECK(dropped["summary"]["dropped"] == f["requests_dropped"]);
  CHECK(dropped["drops_by_instance"]["r3"] == f["requests_dropped"]);
  CHECK(dropped["summary"]["arrived"].get<int64_t>() ==
        dropped["summary"]["completed"].get<int64_t>() + f["requests_dropped"].get<int64_t>());

  doc = load_scenario(kScenario);
  doc["faults"][0]["recover_after_s"] = 20;
  const auto recovered = run_json(doc);
  REQUIRE(recovered["faults"]["events"].size() == 2);
  // Down from 72 s to 92 s, r3 does no work in the windows wholly inside: busy 0 (its
  // iteration in flight at 72 s was lost, not left running) and its GPU at the idle floor
  // (0.2927 of the H100's 700 W TDP, models/power.h), as any GPU without work.
  const auto& ts = recovered["timeseries"];
  const auto& r3 = ts["instances"][3];
  REQUIRE(r3["name"] == "r3");
  int64_t down_windows = 0;
  for (size_t k = 1; k < ts["time_s"].size(); ++k) {
    const double from_s = ts["time_s"][k - 1].get<double>(), to_s = ts["time_s"][k].get<double>();
    if (from_s < 72.0 || to_s > 92.0) continue;
    ++down_windows;
    CHECK(r3["busy_fraction"][k].get<double>() == 0.0);
    CHECK(r3["stages"][0]["power_w"][k].get<double>() ==
          Approx(PowerModel::kIdleFraction * 700.0).epsilon(1e-9));
  }
  CHECK(down_windows >= 19);
  CHECK(recovered["faults"]["events"][1]["action"] == "recover");
  CHECK(recovered["faults"]["events"][1]["time_s"].get<double>() == Approx(92.0));
  int64_t served_after_recovery = 0;
  for (const auto& r : recovered["requests"])
    if (r["instance"] == "r3" && r["arrival_s"].get<double>() > 92.0) ++served_after_recovery;
  CHECK(served_after_recovery > 100);
  const auto never = run_json(load_scenario(kScenario));
  // Back after 20 s, r3 takes its share again: the latencies of the rest of the run fall
  // (measured mean E2E 5.22 -> 5.04 s; the burst right after the failure, which sets p99 TTFT,
  // is the same either way).
  CHECK(recovered["summary"]["mean_e2el_ms"].get<double>() <
        never["summary"]["mean_e2el_ms"].get<double>());
}

TEST_CASE("a straggler runs its iterations slower by its factor", "[faults]") {
  json doc = load_scenario("closed_loop_h100.json");
  // Without the benchmark's frontend latency, a fixed delay per request that a straggler does
  // not slow, the clients' requests meet the same batches.
  doc["engine_overrides"] = json::object();
  const auto base = run_json(doc, "closed.json");
  doc["faults"] = json::parse(R"([{"kind": "straggler", "instance": "replica", "from_s": 0,
                                  "slowdown": 2.0}])");
  const auto slow = run_json(doc, "closed.json");
  // A closed loop keeps the same batches, so every iteration takes exactly twice as long, up to
  // whole-nanosecond rounding of each step.
  CHECK(slow["summary"]["mean_tpot_ms"].get<double>() ==
        Approx(2.0 * base["summary"]["mean_tpot_ms"].get<double>()).epsilon(1e-3));
  CHECK(slow["faults"]["events"].size() == 1);
}

TEST_CASE("a degraded link slows only the replicas whose transfers cross it", "[faults]") {
  json doc = load_scenario("seed_q6_parallelism.json");
  doc["output"]["requests"] = true;
  const auto base = tpot_by_instance(run_json(doc, "q6.json"));
  doc["faults"] = json::parse(R"([{"kind": "link_degradation", "link": "B/nic-switch",
                                  "from_s": 0, "bandwidth_factor": 0.1}])");
  const auto slow = tpot_by_instance(run_json(doc, "q6.json"));
  // Round robin at low load: each request runs alone, so the NVLink replica is untouched.
  CHECK(slow.at("tp2_nvlink") == Approx(base.at("tp2_nvlink")).epsilon(1e-12));
  // TP across the network all-reduces twice per layer over the degraded link. A decode step's
  // messages are a few KB, so the 50 us hop latency dominates the 10 GbE time and a tenth of the
  // bandwidth adds about a fifth (measured 18.8 -> 22.5 ms); 10% is the floor asserted. PP
  // sends one activation per stage per step: slower, by less.
  CHECK(slow.at("tp2_network") >= 1.1 * base.at("tp2_network"));
  CHECK(slow.at("pp2_network") > base.at("pp2_network"));
}

TEST_CASE("faults agree between closed-form decode and the step-by-step reference", "[faults]") {
  json doc = load_scenario(kScenario);
  doc["faults"] = json::parse(R"([
    {"kind": "instance_failure", "instance": "r3", "at_s": 72, "recover_after_s": 20},
    {"kind": "straggler", "gpu": "dgx0/1", "from_s": 30, "until_s": 90, "slowdown": 1.7},
    {"kind": "instance_failure", "instance": "r5", "at_s": 50, "requests": "drop"}])");
  RunOptions exact;
  exact.exact_steps = true;
  const auto fast = run_json(doc);
  const auto reference = run_json(doc, "fault.json", exact);
  for (const char* section : {"summary", "faults"})
    for (const auto& [key, value] : reference[section].items()) {
      INFO(section << "/" << key);
      if (value.is_number())
        CHECK(fast[section][key].get<double>() == Approx(value.get<double>()).epsilon(1e-9));
      else
        CHECK(fast[section][key] == value);
    }
}

TEST_CASE("bad faults are refused with a located message", "[faults]") {
  CHECK(fault_error({{"kind", "instance_failure"}, {"instance", "r9"}, {"at_s", 1}}) ==
        "fault.json: /faults/0/instance: unknown instance 'r9'; valid: r0, r1, r2, r3, r4, r5, "
        "r6, r7");
  CHECK(fault_error({{"kind", "instance_failure"}, {"at_s", 1}}) ==
        "fault.json: /faults/0: give either 'instance' or 'gpu'");
  CHECK(fault_error({{"kind", "instance_failure"}, {"gpu", "dgx1/0"}, {"at_s", 1}}) ==
        "fault.json: /faults/0/gpu: unknown GPU 'dgx1/0' (write NODE/INDEX)");
  CHECK(fault_error({{"kind", "straggler"},
                     {"instance", "r1"},
                     {"from_s", 5},
                     {"until_s", 5},
                     {"slowdown", 2}}) == "fault.json: /faults/0/until_s: must be after from_s");
  CHECK(
      fault_error({{"kind", "straggler"}, {"instance", "r1"}, {"from_s", 5}, {"slowdown", 0.5}}) ==
      "fault.json: /faults/0/slowdown: must be >= 1 (times slower), got 0.5");
  CHECK(fault_error({{"kind", "link_degradation"},
                     {"link", "dgx0/nic-switch"},
                     {"from_s", 0},
                     {"bandwidth_factor", 2}}) ==
        "fault.json: /faults/0/bandwidth_factor: must be in (0, 1], got 2");
  CHECK_THAT(fault_error({{"kind", "link_degradation"},
                          {"link", "nowhere"},
                          {"from_s", 0},
                          {"bandwidth_factor", 0.5}}),
             Catch::StartsWith("fault.json: /faults/0/link: unknown link 'nowhere'"));
  CHECK(fault_error({{"kind", "instance_failure"}, {"instance", "r1"}, {"at_s", 1e300}}) ==
        "fault.json: /faults/0/at_s: must be at most 1e+09 s (about 31 years), got 1e+300");
  CHECK_THAT(fault_error({{"kind", "meteor"}}), Catch::StartsWith("fault.json: /faults/0/kind: "));
  CHECK_THAT(
      fault_error({{"kind", "instance_failure"}, {"instance", "r1"}, {"at_s", 1}, {"slowdown", 2}}),
      Catch::StartsWith("fault.json: /faults/0/slowdown: unknown key"));
}

TEST_CASE("a failed link takes down the replicas whose transfers cross it, until it is back",
          "[faults]") {
  json doc = load_scenario("seed_q6_parallelism.json");
  // With faults, iteration traffic keeps its per-transfer price: compare like with like.
  doc["policies"]["iteration_traffic"] = "priced";
  const auto base = run_json(doc, "q6.json");
  // Node B's network link carries both cross-node replicas' TP and PP traffic.
  doc["faults"] = json::parse(R"([{"kind": "link_failure", "link": "B/nic-switch", "at_s": 20,
                                  "recover_after_s": 30}])");
  const auto failed = run_json(doc, "q6.json");
  std::map<std::string, int64_t> requests, base_requests;
  for (const auto& inst : failed["instances"]) requests[inst["name"]] = inst["requests"];
  for (const auto& inst : base["instances"]) base_requests[inst["name"]] = inst["requests"];
  // Round robin over the replicas up: from 20 s to 50 s only the NVLink replica takes arrivals.
  CHECK(requests["tp2_nvlink"] > base_requests["tp2_nvlink"]);
  CHECK(requests["tp2_network"] < base_requests["tp2_network"]);
  CHECK(requests["pp2_network"] < base_requests["pp2_network"]);
  CHECK(failed["summary"]["completed"] == base["summary"]["completed"]);
  const auto& events = failed["faults"]["events"];
  REQUIRE(events.size() == 2);
  CHECK(events[0]["action"] == "fail");
  CHECK(events[1]["action"] == "recover");
  CHECK(events[1]["time_s"].get<double>() == Approx(50.0));

  // A link no replica's transfers cross changes nothing.
  doc["faults"][0]["link"] = "A/0-A/nic";
  const auto untouched = run_json(doc, "q6.json");
  CHECK(untouched["summary"].dump() == base["summary"].dump());
}

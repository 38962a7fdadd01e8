// Iteration traffic on shared links (models/step_traffic.h): TP ring hops, EP all-to-alls and
// PP hops that cross the network run as flows, checked by hand against the links' bandwidth,
// alone (the step lasts its price) and sharing a link with another replica or a KV flow.
#include <catch2/catch.hpp>
#include <cmath>

#include "models/network.h"
#include "models/step_traffic.h"
#include "run/scenario.h"
#include "sim/simulator.h"
#include "test_support.h"

using namespace servesim;
using namespace servesim::testing;
using nlohmann::json;

namespace {

/// Two nodes of `gpus_per_node` H100s behind a network of `bandwidth` bytes/s and no latency.
json two_nodes(int gpus_per_node, double bandwidth) {
  json doc = json::parse(R"({
    "name": "step_traffic_unit", "seed": 1, "model": "Llama-3.1-8B", "engine": "vllm",
    "cluster": {
      "nodes": [ { "name": "a", "gpus": { "type": "H100-SXM", "count": 1 } },
                 { "name": "b", "gpus": { "type": "H100-SXM", "count": 1 } } ],
      "network": { "bandwidth_bytes_per_s": 1e9, "latency_s": 0 }
    },
    "instances": [ { "name": "r0", "gpus": ["a/0", "b/0"], "tp": 2 } ],
    "policies": { "router": { "name": "round_robin" } },
    "workload": { "kind": "closed_loop", "concurrency": 1, "input_tokens": 512,
                  "output_tokens": 64, "requests_per_client": 1, "warmup_per_client": 0 }
  })");
  for (auto& node : doc["cluster"]["nodes"]) node["gpus"]["count"] = gpus_per_node;
  doc["cluster"]["network"]["bandwidth_bytes_per_s"] = bandwidth;
  return doc;
}

Scenario parse(const json& doc) {
  return parse_scenario(doc, "step_traffic_unit.json", source_path("scenarios"), {});
}

/// The summed latency of the fastest path between two GPUs (PCIe to the NIC at each end).
double latency_s(const Scenario& s, int from, int to) {
  return s.cluster->gpu_path(from, to).latency_s;
}

}  // namespace

TEST_CASE("a TP ring hop and a KV flow on one link share it: each takes twice its solo time",
          "[step_traffic]") {
  const Scenario s = parse(two_nodes(2, 1e9));
  Simulator sim;
  ClusterNetwork network(sim, *s.cluster);
  // GPUs 0, 1 on node a; 2, 3 on node b. A TP 2 ring a/0 <-> b/0.
  StepTraffic ring(network, {0, 2}, 2, 1, 32);
  REQUIRE(ring.crosses_network());
  IterationCost cost;
  cost.tp_bytes_per_gpu = 1e9;  // each GPU sends 1 GB to its neighbour: 1 s on the network
  const double lat_s = latency_s(s, 0, 2);
  // Alone: bytes over the network's bandwidth (PCIe is 64x faster) plus the path's latency.
  CHECK(ring.solo_s(cost) == Approx(1.0 + lat_s).epsilon(1e-12));

  double ring_done_s = -1, kv_done_s = -1;
  ring.send(cost, [&] { ring_done_s = sim.now().to_s(); });
  // A KV hand-off a/1 -> b/1 of the same size leaves node a on the same link at the same time:
  // the a -> b direction carries two flows at 0.5 GB/s each; b -> a carries the ring's other
  // hop alone.
  network.send(1, 3, 1e9, [&] { kv_done_s = sim.now().to_s(); });
  sim.run();
  // Completion is rounded to the nanosecond.
  CHECK(kv_done_s == Approx(2.0 + latency_s(s, 1, 3)).margin(1e-8));
  CHECK(ring_done_s == Approx(2.0 + lat_s).margin(1e-8));
  CHECK(ring.bytes_sent() == 2e9);
  network.settle();
  network.check_conservation();
}

TEST_CASE("an EP all-to-all shares its nodes' link among their GPUs and with other flows",
          "[step_traffic][moe]") {
  const Scenario s = parse(two_nodes(4, 1e9));
  // Eight GPUs, four a node: one EP stage over both nodes. Each GPU sends its bytes for the
  // other node to the GPU of its own rank there: four flows on each node's link and direction.
  auto run = [&](bool with_kv) {
    Simulator sim;
    ClusterNetwork network(sim, *s.cluster);
    StepTraffic a2a(network, {0, 1, 2, 3, 4, 5, 6, 7}, 8, 1, 61);
    IterationCost cost;
    cost.ep_inter_bytes_per_gpu = 1e8;
    if (!with_kv) CHECK(a2a.solo_s(cost) == Approx(0.4 + latency_s(s, 0, 4)).epsilon(1e-12));
    double done_s = -1;
    a2a.send(cost, [&] { done_s = sim.now().to_s(); });
    if (with_kv) network.send(0, 5, 1e8, [] {});
    sim.run();
    CHECK(a2a.bytes_sent() == Approx(8e8).epsilon(1e-12));
    return done_s - latency_s(s, 0, 4);
  };
  // Alone: 4 x 100 MB over 1 GB/s. With a fifth flow of 100 MB out of node a: 0.5 s.
  CHECK(run(false) == Approx(0.4).margin(1e-8));
  CHECK(run(true) == Approx(0.5).margin(1e-8));
}

TEST_CASE("iteration traffic alone on its links lasts its price; auto leaves it priced",
          "[step_traffic]") {
  json doc = two_nodes(1, 1.25e9);  // 10 GbE between the TP ranks
  doc["output"] = {{"requests", true}};
  doc["workload"]["concurrency"] = 4;
  doc["workload"]["requests_per_client"] = 3;
  auto run = [&](const char* mode) {
    json d = doc;
    d["policies"]["iteration_traffic"] = mode;
    return run_doc(d).result;
  };
  const json flows = run("flows"), priced = run("priced"), automatic = run("auto");
  REQUIRE(flows["instances"][0]["network_steps"].get<int64_t>() > 100);
  CHECK(flows["instances"][0]["network_wait_s"].get<double>() < 1e-6);
  // Each step's compute and transfers are rounded to the nanosecond apart: 1e-6 relative is
  // far above what that moves a request's times (ms) by.
  const auto& fr = flows["requests"];
  const auto& pr = priced["requests"];
  REQUIRE(fr.size() == 12);
  for (size_t i = 0; i < fr.size(); ++i) {
    CHECK(fr[i]["ttft_ms"].get<double>() == Approx(pr[i]["ttft_ms"].get<double>()).epsilon(1e-6));
    CHECK(fr[i]["e2el_ms"].get<double>() == Approx(pr[i]["e2el_ms"].get<double>()).epsilon(1e-6));
  }
  // One replica alone on its links: auto keeps the closed-form price, byte for byte.
  CHECK(!automatic["instances"][0].contains("network_steps"));
  CHECK(automatic["summary"] == priced["summary"]);
  CHECK(automatic["requests"] == priced["requests"]);
}

TEST_CASE("two TP rings crossing one link in lockstep each wait one more solo transfer a step",
          "[step_traffic]") {
  json doc = two_nodes(2, 1.25e9);
  doc["instances"] = json::parse(R"([ { "name": "r0", "gpus": ["a/0", "b/0"], "tp": 2 },
                                      { "name": "r1", "gpus": ["a/1", "b/1"], "tp": 2 } ])");
  // Two clients, one request each, at the same instant: round robin gives each replica one,
  // and the two replicas run the same steps at the same times.
  doc["workload"]["concurrency"] = 2;
  auto run = [&](const char* mode) {
    json d = doc;
    d["policies"]["iteration_traffic"] = mode;
    return run_doc(d).result;
  };
  const json shared = run("auto"), priced = run("priced");
  // Each step's ring hop a -> b of both replicas shares node a's link (and b -> a node b's):
  // two equal flows take twice the solo data time, so each replica waits, over the run, its
  // own bytes over the bandwidth: half the link's bytes in one direction.
  double a_to_b_bytes = 0;
  for (const auto& link : shared["links"])
    if (link["name"] == "a/nic-switch") a_to_b_bytes = link["flow_bytes_forward"].get<double>();
  REQUIRE(a_to_b_bytes > 0);
  const double expected_wait_s = a_to_b_bytes / 2 / 1.25e9;
  for (const auto& inst : shared["instances"]) {
    CHECK(inst["network_steps"].get<int64_t>() == 64);  // the prefill and 63 decode steps
    // Nanosecond rounding of 64 steps' flows against ~40 ms of waiting.
    CHECK(inst["network_wait_s"].get<double>() == Approx(expected_wait_s).epsilon(1e-5));
  }
  // The wait lands on the requests' end to end latency, all of it.
  const double e2el_gain_ms = shared["summary"]["mean_e2el_ms"].get<double>() -
                              priced["summary"]["mean_e2el_ms"].get<double>();
  CHECK(e2el_gain_ms == Approx(expected_wait_s * 1e3).epsilon(1e-4));
  // Both see the same: the link is shared fairly.
  CHECK(shared["instances"][0]["network_wait_s"] == shared["instances"][1]["network_wait_s"]);
}

TEST_CASE("iteration traffic on flows is refused with faults, with its place", "[step_traffic]") {
  json doc = two_nodes(1, 1.25e9);
  doc["policies"]["iteration_traffic"] = "flows";
  doc["faults"] = json::parse(R"([ { "kind": "instance_failure", "instance": "r0", "at_s": 1 } ])");
  try {
    run_doc(doc);
    FAIL("accepted");
  } catch (const InputError& e) {
    CHECK_THAT(e.what(),
               Catch::Contains("/faults") && Catch::Contains("iteration traffic on flows"));
  }
  doc["policies"]["iteration_traffic"] = "sometimes";
  doc.erase("faults");
  CHECK_THROWS_WITH(run_doc(doc), Catch::Contains("/policies/iteration_traffic"));
}

TEST_CASE("two PP replicas whose stage hops share a 10 GbE link slow each other's steps",
          "[step_traffic][scenario]") {
  json doc = load_scenario("pp_across_nodes_10gbe.json");
  const json shared = run_doc(doc, "pp_across_nodes_10gbe.json").result;
  doc["policies"]["iteration_traffic"] = "priced";
  const json priced = run_doc(doc, "pp_across_nodes_10gbe.json").result;
  const auto& s = shared["summary"];
  const auto& p = priced["summary"];
  CHECK(s["completed"] == p["completed"]);
  // Prefill chunks of 8,192 tokens send 134 MB between the stages (107 ms alone on the link),
  // so whenever the two replicas' hops overlap each takes up to twice as long: measured +12%
  // on median TPOT and TTFT. The bounds allow for a changed cost model while excluding both
  // "no effect" (< 5%) and more than the doubling two flows on a link can cause.
  const double tpot_ratio = s["median_tpot_ms"].get<double>() / p["median_tpot_ms"].get<double>();
  const double ttft_ratio = s["median_ttft_ms"].get<double>() / p["median_ttft_ms"].get<double>();
  CHECK(tpot_ratio > 1.05);
  CHECK(tpot_ratio < 2.0);
  CHECK(ttft_ratio > 1.03);
  CHECK(ttft_ratio < 2.0);
  for (const auto& inst : shared["instances"]) {
    CHECK(inst["network_steps"].get<int64_t>() == inst["iterations"].get<int64_t>());
    CHECK(inst["network_wait_s"].get<double>() > 1.0);
  }
  // The link's bytes are the same whichever way they are priced; only their timing differs.
  for (size_t i = 0; i < shared["links"].size(); ++i)
    if (shared["links"][i]["name"] == "a/nic-switch") {
      CHECK(shared["links"][i]["peak_flows"].get<int>() == 8);  // 4 ranks x 2 replicas
      CHECK(shared["links"][i]["bytes_forward"].get<double>() ==
            Approx(priced["links"][i]["bytes_forward"].get<double>()).epsilon(1e-3));
    }
}

TEST_CASE("PP micro-batches fill the pipeline: a round is one micro-batch's way through it",
          "[pp]") {
  // One Llama-3.1-8B replica, PP 2 over two GPUs of a node (NVLink), closed loop of identical
  // requests all sent at once: with C clients every round holds C decodes in lockstep.
  auto run = [](int clients, bool microbatching) {
    json doc = two_nodes(2, 1.25e9);
    doc["instances"] = json::parse(R"([ { "name": "r0", "gpus": ["a/0", "a/1"], "pp": 2 } ])");
    doc["instances"][0]["pp_microbatching"] = microbatching;
    doc["workload"]["concurrency"] = clients;
    return run_doc(doc).result;
  };
  const json one = run(1, true), two = run(2, true), two_serial = run(2, false);
  auto tpot = [](const json& r) { return r["summary"]["mean_tpot_ms"].get<double>(); };
  auto gpu_busy = [](const json& r) { return r["gpus"][0]["busy_fraction"].get<double>(); };
  auto busy = [](const json& r) { return r["instances"][0]["busy_fraction"].get<double>(); };
  // Two requests run as two micro-batches of one: each round costs what one request's step
  // does, and both advance in it.
  CHECK(tpot(two) == Approx(tpot(one)).epsilon(1e-9));
  // One batch of two at a time costs more per step (two requests' attention and rows).
  CHECK(tpot(two_serial) > tpot(two));
  // The bubble: a lone request keeps each stage busy half of the replica's busy time; two
  // micro-batches keep both stages busy all of it; without micro-batching half again.
  CHECK(gpu_busy(one) == Approx(busy(one) / 2).epsilon(1e-9));
  CHECK(gpu_busy(two) == Approx(busy(two)).epsilon(1e-9));
  CHECK(gpu_busy(two_serial) == Approx(busy(two_serial) / 2).epsilon(1e-9));
  // Each stage reads its weights once per micro-batch: twice a round.
  const double mbu_one = one["gpus"][0]["mbu"].get<double>() * busy(two) / busy(one);
  CHECK(two["gpus"][0]["mbu"].get<double>() > 1.9 * mbu_one);
  CHECK(two["instances"][0]["pp_microbatching"] == true);
}

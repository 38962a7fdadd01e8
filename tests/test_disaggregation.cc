// Disaggregated prefill/decode: the KV hand-off priced as flows on the cluster's links (checked
// by hand against the path's bandwidth and latency), links shared by concurrent hand-offs, and
// the shipped scenarios' effects in direction and size.
#include <catch2/catch.hpp>

#include "models/cost_model.h"
#include "run/scenario.h"
#include "test_support.h"

using namespace servesim;
using namespace servesim::testing;
using nlohmann::json;

TEST_CASE("a lone KV hand-off takes the path's latency plus bytes over its narrowest link",
          "[disaggregation]") {
  json doc = json::parse(R"({
    "name": "disagg_unit", "seed": 1, "model": "Llama-3.1-8B", "engine": "vllm",
    "cluster": {
      "nodes": [ { "name": "a", "gpus": { "type": "H100-SXM", "count": 1 } },
                 { "name": "b", "gpus": { "type": "H100-SXM", "count": 1 } } ],
      "network": { "bandwidth_bytes_per_s": 1e10, "latency_s": 1e-5 }
    },
    "instances": [ { "name": "p", "node": "a", "role": "prefill" },
                   { "name": "d", "node": "b", "role": "decode" } ],
    "policies": { "router": { "name": "least_loaded" },
                  "batcher": { "name": "continuous", "max_num_batched_tokens": 65536 } },
    "workload": { "kind": "closed_loop", "concurrency": 1, "input_tokens": 4096,
                  "output_tokens": 2, "requests_per_client": 1, "warmup_per_client": 0 }
  })");
  const Scenario s = parse_scenario(doc, "disagg_unit.json", source_path("scenarios"), {});
  // Llama-3.1-8B, BF16 KV: 32 layers x 8 KV heads x 128 x (K, V) x 2 bytes = 128 KiB a token.
  const double kv_bytes_per_token = kv_bytes_per_token_per_gpu(s.model, DType::kBf16, 1, 1);
  REQUIRE(kv_bytes_per_token == 131072.0);
  const double bytes = 4096 * kv_bytes_per_token;
  const Path path = s.cluster->gpu_path(0, 1);
  const double expected_ms = path.transfer_time_s(bytes) * 1e3;
  REQUIRE(path.bandwidth_bytes_per_s == 1e10);  // the network, narrower than PCIe

  const RunOutput disagg = run_doc(doc);
  const auto& summary = disagg.result["summary"];
  CHECK(summary["kv_transfers"].get<int>() == 1);
  CHECK(summary["kv_transfer_bytes"].get<double>() == bytes);
  // Flow completion is rounded to the nanosecond: 1e-6 relative is far above that.
  CHECK(summary["mean_kv_transfer_ms"].get<double>() == Approx(expected_ms).epsilon(1e-6));

  // The prefill replica prices the prefill as a mixed replica would: the same TTFT.
  json mixed = doc;
  mixed["instances"] = json::parse(R"([ { "name": "m", "node": "a" } ])");
  const RunOutput alone = run_doc(mixed);
  const double ttft_ms = summary["mean_ttft_ms"].get<double>();
  CHECK(ttft_ms == Approx(alone.result["summary"]["mean_ttft_ms"].get<double>()).epsilon(1e-12));
  // The second token waits for the KV, then one decode step on the decode replica.
  const double second_token_gap_ms = summary["mean_e2el_ms"].get<double>() - ttft_ms;
  const double mixed_gap_ms = alone.result["summary"]["mean_e2el_ms"].get<double>() -
                              alone.result["summary"]["mean_ttft_ms"].get<double>();
  CHECK(second_token_gap_ms == Approx(expected_ms + mixed_gap_ms).epsilon(1e-3));

  // Each side's links report the flow's bytes in its direction.
  double network_bytes = 0;
  for (const auto& link : disagg.result["links"])
    if (link["kind"] == "network") {
      network_bytes +=
          link["flow_bytes_forward"].get<double>() + link["flow_bytes_back"].get<double>();
      CHECK(link["peak_flows"].get<int>() == 1);
    }
  CHECK(network_bytes == 2 * bytes);  // out of node a's NIC, into node b's
  for (const auto& inst : disagg.result["instances"])
    CHECK(inst["role"] == (inst["name"] == "p" ? "prefill" : "decode"));
}

TEST_CASE("hand-offs at the same instant share the link: each takes twice as long",
          "[disaggregation]") {
  auto run = [](int clients) {
    json doc = json::parse(R"({
      "name": "disagg_unit", "seed": 1, "model": "Llama-3.1-8B", "engine": "vllm",
      "cluster": {
        "nodes": [ { "name": "a", "gpus": { "type": "H100-SXM", "count": 1 } },
                   { "name": "b", "gpus": { "type": "H100-SXM", "count": 1 } } ],
        "network": { "bandwidth_bytes_per_s": 1e9, "latency_s": 0 }
      },
      "instances": [ { "name": "p", "node": "a", "role": "prefill" },
                     { "name": "d", "node": "b", "role": "decode" } ],
      "policies": { "router": { "name": "least_loaded" },
                    "batcher": { "name": "continuous", "max_num_batched_tokens": 65536 } },
      "workload": { "kind": "closed_loop", "input_tokens": 2048, "output_tokens": 2,
                    "requests_per_client": 1, "warmup_per_client": 0 }
    })");
    doc["workload"]["concurrency"] = clients;
    return run_doc(doc).result;
  };
  const json one = run(1), two = run(2);
  // Both prompts prefill in one iteration, so both hand-offs start together; at 1 GB/s the
  // PCIe and NVLink latencies (microseconds) are below 0.1% of the ~0.27 s transfer.
  const double solo_ms = one["summary"]["mean_kv_transfer_ms"].get<double>();
  CHECK(two["summary"]["mean_kv_transfer_ms"].get<double>() == Approx(2 * solo_ms).epsilon(1e-3));
  CHECK(two["summary"]["p99_kv_transfer_ms"].get<double>() == Approx(2 * solo_ms).epsilon(1e-3));
}

TEST_CASE("disaggregation trades TTFT for TPOT on the Azure code trace and 2P:1D fits it best",
          "[disaggregation][scenario]") {
  const json mixed =
      run_doc(load_scenario("disagg_mixed_azure_code.json"), "disagg_mixed_azure_code.json")
          .result["summary"];
  const json p1d1 =
      run_doc(load_scenario("disagg_1p1d_azure_code.json"), "disagg_1p1d_azure_code.json")
          .result["summary"];
  const json p2d1 =
      run_doc(load_scenario("disagg_2p1d_azure_code.json"), "disagg_2p1d_azure_code.json")
          .result["summary"];
  for (const json* s : {&mixed, &p1d1, &p2d1}) {
    CHECK((*s)["completed"].get<int>() == 8819);
    CHECK((*s)["dropped"].get<int>() == 0);
  }
  // Decode steps no longer wait behind 2k-token prefills. Measured: TPOT mean 26.1 -> 8.7 ms
  // (3.0x), p50 13.5 -> 8.6 ms (1.6x), p99 188 -> 10.4 ms (18x); the bounds keep about half of
  // each factor, room for recalibration without hiding a lost effect.
  CHECK(mixed["mean_tpot_ms"].get<double>() > 2 * p1d1["mean_tpot_ms"].get<double>());
  CHECK(mixed["median_tpot_ms"].get<double>() > 1.3 * p1d1["median_tpot_ms"].get<double>());
  CHECK(mixed["p99_tpot_ms"].get<double>() > 8 * p1d1["p99_tpot_ms"].get<double>());
  // Half the GPUs prefill: TTFT grows (p50 59.8 -> 228.7 ms measured); 2P:1D gives prefill
  // more GPUs and wins back part of it (112.9 ms), and more requests meet both SLOs.
  CHECK(p1d1["median_ttft_ms"].get<double>() > 2 * mixed["median_ttft_ms"].get<double>());
  CHECK(p2d1["median_ttft_ms"].get<double>() < 0.7 * p1d1["median_ttft_ms"].get<double>());
  CHECK(p2d1["request_goodput"].get<double>() > p1d1["request_goodput"].get<double>());
  CHECK(p2d1["request_goodput"].get<double>() > mixed["request_goodput"].get<double>());
}

TEST_CASE("10 GbE between the prefill and decode nodes is the bottleneck and 100 GbE is not",
          "[disaggregation][scenario]") {
  const json slow =
      run_doc(load_scenario("disagg_two_nodes_10gbe.json"), "disagg_two_nodes_10gbe.json").result;
  const json fast =
      run_doc(load_scenario("disagg_two_nodes_100gbe.json"), "disagg_two_nodes_100gbe.json").result;
  auto network_busy = [](const json& r) {
    double busy = 0;
    for (const auto& l : r["links"])
      if (l["kind"] == "network") busy = std::max(busy, l["busy_fraction"].get<double>());
    return busy;
  };
  // The same bytes cross both: 2.37 TB of KV over the run.
  CHECK(slow["summary"]["kv_transfer_bytes"] == fast["summary"]["kv_transfer_bytes"]);
  CHECK(network_busy(slow) > 5 * network_busy(fast));
  // Bursts of the trace queue hand-offs on 10 GbE for seconds: p50 transfer 13.3 s vs 21.7 ms,
  // p50 TPOT 858 vs 9.2 ms measured; factors of 50 and 20 leave wide margins.
  CHECK(slow["summary"]["median_kv_transfer_ms"].get<double>() >
        50 * fast["summary"]["median_kv_transfer_ms"].get<double>());
  CHECK(slow["summary"]["median_tpot_ms"].get<double>() >
        20 * fast["summary"]["median_tpot_ms"].get<double>());
  CHECK(slow["summary"]["request_goodput"].get<double>() <
        0.5 * fast["summary"]["request_goodput"].get<double>());
}

TEST_CASE("disaggregated scenarios that cannot work are refused with their place",
          "[disaggregation][errors]") {
  const json base = load_scenario("disagg_1p1d_azure_code.json");
  auto error_of = [](json doc) {
    try {
      parse_scenario(doc, "d.json", source_path("scenarios"), {});
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  json no_decode = base;
  no_decode["instances"][1]["template"]["role"] = "mixed";
  CHECK_THAT(error_of(no_decode), Catch::Contains("d.json: /instances") &&
                                      Catch::Contains("at least one replica with role 'decode'"));
  json no_prefill = base;
  no_prefill["instances"][0]["template"]["role"] = "mixed";
  CHECK_THAT(error_of(no_prefill), Catch::Contains("role 'prefill'"));
  json stray_router = load_scenario("disagg_mixed_azure_code.json");
  stray_router["policies"]["decode_router"] = {{"name", "least_loaded"}};
  CHECK_THAT(error_of(stray_router), Catch::Contains("/policies/decode_router") &&
                                         Catch::Contains("needs replicas with role 'decode'"));
  json static_batcher = base;
  static_batcher["policies"]["batcher"] = {{"name", "static"}, {"batch_size", 8}};
  CHECK_THAT(error_of(static_batcher), Catch::Contains("continuous batcher"));
  json bad_role = base;
  bad_role["instances"][0]["template"]["role"] = "prefil";
  CHECK_THAT(error_of(bad_role), Catch::Contains("/instances/0/template/role"));
}

namespace {

/// The highest Poisson rate (requests/s, to 1%) at which the scenario meets DistServe's SLOs:
/// P90 TTFT <= 0.4 s and P90 TPOT <= 0.04 s.
double max_rate_within_slo(json doc) {
  double lo = 0.1, hi = 40;
  while (hi - lo > 0.01 * lo) {
    const double mid = 0.5 * (lo + hi);
    doc["workload"]["rate_per_s"] = mid;
    const json s = run_doc(doc, "distserve_fig1_a100.json").result["summary"];
    const bool met = s["p90_ttft_ms"].get<double>() <= 400 && s["p90_tpot_ms"].get<double>() <= 40;
    (met ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace

TEST_CASE("DistServe's Figure 1: 2 prefill + 1 decode GPUs beat colocation in goodput per GPU",
          "[disaggregation][scenario][published]") {
  const json disagg = load_scenario("distserve_fig1_a100.json");
  json colocated = disagg;
  colocated["cluster"]["nodes"][0]["gpus"]["count"] = 1;
  colocated["instances"] = json::parse(R"([ { "name": "mixed", "gpus": ["a100/0"] } ])");
  // DistServe's baseline was vLLM of 2023: whole prompts first, no chunking.
  json colocated_v0 = colocated;
  colocated_v0["policies"]["batcher"] = {{"name", "continuous"},
                                         {"chunked_prefill", false},
                                         {"prefill_priority", true},
                                         {"max_num_batched_tokens", 2048}};
  const double per_gpu_disagg = max_rate_within_slo(disagg) / 3;
  const double per_gpu_v0 = max_rate_within_slo(colocated_v0);
  const double per_gpu_chunked = max_rate_within_slo(colocated);
  INFO("per GPU: 2P1D " << per_gpu_disagg << ", colocated " << per_gpu_v0 << " (vLLM 2023), "
                        << per_gpu_chunked << " (chunked prefill)");
  // Published: 3.3 vs 1.6 requests/s per GPU, 2.1x. Measured here: 7.05 vs 4.23, 1.67x (the
  // absolute rates are ~2x DistServe's, whose own runtime differs from the vLLM fits). The band
  // [1.3x, 3x] holds the published gain and ours; a lost or inverted effect falls outside it.
  CHECK(per_gpu_disagg / per_gpu_v0 > 1.3);
  CHECK(per_gpu_disagg / per_gpu_v0 < 3.0);
  // Chunked prefill (vLLM since 2024) narrows the gap, and disaggregation still wins
  // (measured 5.36: 1.31x).
  CHECK(per_gpu_chunked > per_gpu_v0);
  CHECK(per_gpu_disagg > 1.1 * per_gpu_chunked);
}

TEST_CASE("migrating a preempted decode's KV, or finding it cached, ends the thrash on Q11",
          "[migration][scenario]") {
  // Round robin sends long requests to the 8 GB GPUs, whose KV cannot hold them: with every
  // preempted context recomputed they are preempted again and again. With migration, a
  // preempted decode moves to the replica with the most free KV over the 10 GbE network and
  // stays there; with vLLM's prefix cache (the preset's default) a preempted request finds
  // what is left of its blocks when it is scheduled again.
  json doc = load_scenario("seed_q11_four_node.json");
  doc["policies"]["router"]["name"] = "round_robin";
  const json cached = run_doc(doc).result;
  doc["engine_overrides"]["preempted_kv"] = "none";
  const json recompute = run_doc(doc).result;
  doc["policies"]["preemption"] = "migrate";
  const json migrate = run_doc(doc).result;
  const auto& r = recompute["summary"];
  const auto& m = migrate["summary"];
  const auto& c = cached["summary"];
  // Measured: preemptions 1178 -> 14, prefilled tokens 6.77M -> 0.79M (54k tokens found
  // cached), mean E2E 71.7 s -> 4.8 s. The bounds keep well under half of each effect.
  CHECK(c["completed"] == r["completed"]);
  CHECK(c["preempted_kv_reused_tokens"].get<double>() > 0);
  CHECK(r["preemptions"].get<double>() > 20 * c["preemptions"].get<double>());
  CHECK(r["prefill_tokens"].get<double>() > 4 * c["prefill_tokens"].get<double>());
  CHECK(r["mean_e2el_ms"].get<double>() > 7 * c["mean_e2el_ms"].get<double>());
  CHECK_FALSE(r.contains("preempted_kv_reused_tokens"));
  CHECK(m["completed"] == r["completed"]);
  CHECK(m["kv_migrations"].get<int>() > 0);
  // Measured: 14 migrations; preemptions 1178 -> 563, prefilled tokens 6.77M -> 4.00M, mean
  // E2E 71.7 s -> 20.4 s. The bounds keep about half of each effect.
  CHECK(r["preemptions"].get<double>() > 1.5 * m["preemptions"].get<double>());
  CHECK(r["prefill_tokens"].get<double>() > 1.3 * m["prefill_tokens"].get<double>());
  CHECK(r["mean_e2el_ms"].get<double>() > 2 * m["mean_e2el_ms"].get<double>());
  // A migration moves (context tokens) x 112 KiB over 10 GbE (1.25 GB/s): each one takes at
  // least the time of its smallest possible transfer, a one-block context.
  CHECK(m["mean_kv_migration_ms"].get<double>() > 16 * 114688 / 1.25e9 * 1e3);
  int64_t migrations = 0;
  for (const auto& inst : migrate["instances"]) migrations += inst["migrations"].get<int64_t>();
  CHECK(migrations == m["kv_migrations"].get<int64_t>());
}

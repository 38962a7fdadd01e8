// The seed questionnaire's phenomena (Q2, Q6-Q11) as shipped scenarios: each test asserts the
// effect's direction and size. Figures quoted in comments are the measured ones (seed 1), also
// listed in scenarios/README.md.

#include <catch2/catch.hpp>

#include "models/cost_model.h"
#include "models/llm.h"
#include "test_support.h"

using namespace servesim;
using namespace servesim::testing;
using nlohmann::json;

namespace {

double summary(const RunOutput& out, const char* key) {
  return out.result["summary"][key].get<double>();
}

/// Median TPOT (ms) of the finished requests served by `instance`.
double instance_median_tpot_ms(const RunOutput& out, const std::string& instance) {
  std::vector<double> tpots;
  for (const auto& r : out.result["requests"]) {
    if (r["instance"] != instance || r["generated_tokens"].get<int>() < 2) continue;
    tpots.push_back((r["e2el_ms"].get<double>() - r["ttft_ms"].get<double>()) /
                    (r["generated_tokens"].get<double>() - 1));
  }
  REQUIRE(!tpots.empty());
  std::sort(tpots.begin(), tpots.end());
  return tpots[tpots.size() / 2];
}

}  // namespace

TEST_CASE("Q7: continuous batching cuts median TTFT >= 5x against static batch 64 at low load",
          "[scenario][seed][q7]") {
  const json doc = load_scenario("seed_q7_static_batching.json");
  const RunOutput stat = run_doc(doc, "q7.json");
  json cont_doc = doc;
  cont_doc["policies"]["batcher"]["name"] = "continuous";
  const RunOutput cont = run_doc(cont_doc, "q7.json");
  // Measured: static 17.1 s median TTFT (2 req/s never fills 64; the 30 s timeout fires), of
  // which 15.7 s is queueing; continuous 0.060 s. The 5x asked for is far inside that.
  const double stat_ttft = summary(stat, "median_ttft_ms"),
               cont_ttft = summary(cont, "median_ttft_ms");
  CHECK(stat_ttft > 5 * cont_ttft);
  // Where the time went: almost all of static's TTFT is queueing, not compute.
  CHECK(summary(stat, "median_queue_ms") > 0.9 * stat_ttft);
  CHECK(summary(cont, "median_queue_ms") < 0.5 * cont_ttft + 1.0);
}

TEST_CASE("Q8: without a KV cache per-token latency grows linearly with context",
          "[scenario][seed][q8]") {
  const json doc = load_scenario("seed_q8_no_kv_cache.json");
  auto tpot = [&](const char* kv, int context) {
    json d = doc;
    d["policies"]["kv"]["name"] = kv;
    d["workload"]["input_tokens"] = context;
    return summary(run_doc(d, "q8.json"), "median_tpot_ms");
  };
  const double none_100 = tpot("no_cache", 100), none_500 = tpot("no_cache", 500),
               none_1000 = tpot("no_cache", 1000), none_2000 = tpot("no_cache", 2000);
  const double kv_100 = tpot("gpu_only", 100), kv_2000 = tpot("gpu_only", 2000);
  // The bars: >= 10x from context 100 to 2000 without the cache (measured ~10.5x:
  // at 100 tokens the step is bound by reading the weights, at 2000 by recomputing 2000 rows),
  // < 2x with it (measured ~1.1x: only the KV read grows).
  CHECK(none_2000 >= 10 * none_100);
  CHECK(kv_2000 < 2 * kv_100);
  // Linear in context once compute-bound, as the cost model predicts (GEMM rows = context;
  // the quadratic attention term is < 5% of the step at 2000 tokens for a 3B model): the
  // increments per 1000 tokens agree within 10%.
  const double slope_high = (none_2000 - none_1000) / 1000,
               slope_low = (none_1000 - none_500) / 500;
  CHECK(slope_high == Approx(slope_low).epsilon(0.10));
}

TEST_CASE(
    "Q9: multi-turn KV in VRAM only fills up, preempts and the tail grows; reuse cuts prefill",
    "[scenario][seed][q9]") {
  const json doc = load_scenario("seed_q9_multiturn_vram.json");
  const RunOutput vram = run_doc(doc, "q9.json");
  const auto& ts = vram.result["timeseries"];
  const auto& inst = ts["instances"][0];
  const auto& kv = inst["kv_used_fraction"];
  const auto& pre = inst["preemptions"];
  const auto& p99 = ts["p99_e2el_ms"];
  const size_t n = kv.size();
  REQUIRE(n > 10);
  // Occupancy climbs: the first tenth of the run is below half full, later samples reach 95%.
  double early_kv = 0, late_kv = 0;
  for (size_t i = 0; i < n / 10; ++i) early_kv = std::max(early_kv, kv[i].get<double>());
  for (size_t i = n / 10; i < n; ++i) late_kv = std::max(late_kv, kv[i].get<double>());
  CHECK(early_kv < 0.5);
  CHECK(late_kv > 0.95);
  // Preemptions start only after the cache has filled, then keep coming (measured: 0 in the
  // first 40 s, 43 by the end).
  CHECK(pre[n / 10].get<int>() == 0);
  CHECK(pre[n - 1].get<int>() >= 20);
  // Windowed p99 E2E rises over the run: the last third's worst window is >= 3x the first
  // third's (measured ~14 s -> ~150 s).
  double first = 0, last = 0;
  for (size_t i = 0; i < n / 3; ++i) first = std::max(first, p99[i].get<double>());
  for (size_t i = 2 * n / 3; i < n; ++i) last = std::max(last, p99[i].get<double>());
  CHECK(last > 3 * first);

  // Reuse, at a load with no preemption so every prefilled token is a prompt token: with the
  // prefix cache the tokens prefilled drop by exactly the measured reuse fraction, and that
  // fraction matches the workload (turn k reuses turn k-1's full 16-token prompt blocks).
  json light = doc;
  light["workload"]["sessions"] = 3;
  light["workload"]["rate_per_s"] = 0.01;
  const RunOutput reuse = run_doc(light, "q9.json");
  light["policies"]["kv"]["prefix_caching"] = false;
  const RunOutput fresh = run_doc(light, "q9.json");
  REQUIRE(summary(reuse, "preemptions") == 0);
  REQUIRE(summary(fresh, "preemptions") == 0);
  const double reuse_fraction = summary(reuse, "prefix_reuse_fraction");
  CHECK(summary(reuse, "prefill_tokens") ==
        Approx(summary(fresh, "prefill_tokens") * (1 - reuse_fraction)).epsilon(1e-9));
  std::map<int, std::vector<int64_t>> prompts;  // session -> prompt lengths in turn order
  for (const auto& r : reuse.result["requests"])
    prompts[r["session"].get<int>()].push_back(r["prompt_tokens"].get<int64_t>());
  double expected_hits = 0, total = 0;
  for (auto& [session, lengths] : prompts) {
    std::sort(lengths.begin(), lengths.end());  // contexts only grow, so sorted = turn order
    for (size_t k = 0; k < lengths.size(); ++k) {
      total += static_cast<double>(lengths[k]);
      if (k > 0) expected_hits += static_cast<double>(lengths[k - 1] / 16 * 16);
    }
  }
  CHECK(reuse_fraction == Approx(expected_hits / total).epsilon(0.02));
  CHECK(reuse_fraction > 0.5);  // the point of sessions: most of each prompt was seen before
}

TEST_CASE(
    "Q10: host offload removes preemptions; naive fetch costs bytes / PCIe bandwidth, "
    "prefetch halves it",
    "[scenario][seed][q10]") {
  // No preemptions where the VRAM-only run (Q9) had them.
  const RunOutput offload = run_doc(load_scenario("seed_q10_kv_offload.json"), "q10.json");
  CHECK(summary(offload, "preemptions") == 0);
  CHECK(summary(run_doc(load_scenario("seed_q9_multiturn_vram.json"), "q9.json"), "preemptions") >
        20);
  // The PCIe link carries the offload traffic.
  bool pcie_seen = false;
  for (const auto& l : offload.result["links"])
    if (l["kind"] == "pcie" && l["bytes"].get<double>() > 0) pcie_seen = true;
  CHECK(pcie_seen);

  // Hand calculation. One request, prompt 8,000, 64 output tokens, Llama-3.2-3B fp16 on the
  // 8 GB GPU with VRAM for exactly 1,024 KV tokens, PCIe 25 GB/s + 5 us. Prefill runs in 512-
  // token chunks; each time VRAM is full (at 1,024, 2,048, ..., 7,168 computed tokens) all its
  // full VRAM blocks move to host, so decode reads 7,168 tokens from host every step:
  //   KV per token = 2 (K,V) x 28 layers x 8 KV heads x 128 x 2 bytes = 114,688 bytes
  //   per-step fetch = 7,168 x 114,688 / 25e9 + 5e-6 s = 32.89 ms
  json doc = load_scenario("seed_q2_quantization.json");
  doc["workload"] = {{"kind", "poisson"},
                     {"rate_per_s", 1.0},
                     {"requests", 1},
                     {"input_tokens", 8000},
                     {"output_tokens", 64}};
  doc["cluster"]["nodes"][0]["pcie"] = {{"bandwidth_bytes_per_s", 25e9}, {"latency_s", 5e-6}};
  doc["policies"]["batcher"]["max_num_batched_tokens"] = 512;
  const ModelSpec& model = *find_model("Llama-3.2-3B");
  const double token_bytes = kv_bytes_per_token_per_gpu(model, DType::kFp16, 1, 1);
  REQUIRE(token_bytes == 114688.0);
  const double weights = weight_bytes_per_gpu(model, DType::kFp16, 1, 1);
  doc["policies"]["kv"] = {{"name", "host_offload"},
                           {"fetch", "naive"},
                           {"reserve_fraction", 0.0},
                           {"reserve_bytes", 8589934592.0 - weights - 1024.5 * token_bytes}};
  const RunOutput naive = run_doc(doc, "q10.json");
  REQUIRE(naive.result["instances"][0]["kv_capacity_tokens"] == 1024);
  doc["policies"]["kv"]["fetch"] = "prefetch";
  const RunOutput prefetch = run_doc(doc, "q10.json");
  json base_doc = doc;
  base_doc["policies"]["kv"] = {{"name", "gpu_only"}, {"reserve_fraction", 0.0}};
  const RunOutput base = run_doc(base_doc, "q10.json");
  const double hand_ms = (7168 * token_bytes / 25e9 + 5e-6) * 1e3;
  const double naive_added = summary(naive, "median_tpot_ms") - summary(base, "median_tpot_ms");
  const double prefetch_added =
      summary(prefetch, "median_tpot_ms") - summary(base, "median_tpot_ms");
  CHECK(naive_added == Approx(hand_ms).epsilon(0.10));
  // Prefetch overlaps layer l+1's copy with layer l's compute: only the excess of the fetch
  // over the compute (plus one layer) remains. Measured: about a third of naive's.
  CHECK(prefetch_added <= 0.5 * naive_added);
  CHECK(summary(naive, "preemptions") == 0);

  // Prefilled whole, the same prompt needs all of its 8,000 tokens of KV in VRAM at once, where
  // 1,024 fit: the host tier cannot help, so it is dropped with its reason at arrival instead
  // of waiting for blocks that never come (the run would then fail its conservation check).
  json whole = doc;
  whole["policies"]["batcher"]["chunked_prefill"] = false;
  whole["output"]["requests"] = true;
  const RunOutput unchunked = run_doc(whole, "q10.json");
  CHECK(summary(unchunked, "dropped") == 1);
  REQUIRE(unchunked.result["requests"].size() == 1);
  CHECK(unchunked.result["requests"][0]["status"] == "dropped");
  CHECK_THAT(unchunked.result["requests"][0]["reason"].get<std::string>(),
             Catch::Contains("8000 tokens exceeds the 1024 tokens of VRAM KV"));
}

TEST_CASE("with a host tier, a preempted prompt longer than VRAM resumes: its kept KV goes to host",
          "[scenario][seed][q10]") {
  // Q10's sessions with prefill-first chunks of 2,048 tokens: contexts outgrow the T4's VRAM
  // (2,992 tokens of KV) and requests are preempted. A preempted request keeps its blocks;
  // when it comes back as the head with nothing running, only its own kept blocks can make room
  // for its next chunk. Before they could go to host, such a head waited for ever and the run
  // failed its conservation check with requests neither finished nor dropped.
  json doc = load_scenario("seed_q10_kv_offload.json");
  doc["seed"] = 9028;
  doc["policies"]["batcher"] = {{"name", "continuous"},
                                {"max_num_seqs", 16},
                                {"max_num_batched_tokens", 2048},
                                {"chunked_prefill", true},
                                {"prefill_priority", true}};
  doc["policies"]["kv"] = {{"name", "host_offload"},      {"fetch", "prefetch"},
                           {"host_memory_fraction", 0.1}, {"prefix_caching", false},
                           {"block_tokens", 8},           {"reserve_fraction", 0.05}};
  doc["workload"]["sessions"] = 8;
  doc["workload"]["turns"] = 10;
  doc["workload"]["rate_per_s"] = 0.2798934782338966;
  doc["output"]["requests"] = true;
  const RunOutput out = run_doc(doc, "q10.json");
  const json& instance = out.result["instances"][0];
  int64_t longest_prompt = 0;
  for (const auto& r : out.result["requests"])
    longest_prompt = std::max(longest_prompt, r["prompt_tokens"].get<int64_t>());
  // The case at hand: prompts longer than VRAM holds, and preemptions.
  REQUIRE(longest_prompt > instance["kv_capacity_tokens"].get<int64_t>());
  REQUIRE(summary(out, "preemptions") > 0);
  CHECK(summary(out, "completed") == 80);
  CHECK(summary(out, "dropped") == 0);
}

TEST_CASE("Q2: int8 weights on a memory-tight GPU raise the concurrent batch and throughput",
          "[scenario][seed][q2]") {
  const json doc = load_scenario("seed_q2_quantization.json");
  const RunOutput fp16 = run_doc(doc, "q2.json");
  json int8_doc = doc;
  int8_doc["precision"]["weights"] = "int8";
  const RunOutput int8 = run_doc(int8_doc, "q2.json");
  const auto& a = fp16.result["instances"][0];
  const auto& b = int8.result["instances"][0];
  // Memory breakdown per GPU: int8 halves the weights; the freed bytes go to KV.
  CHECK(b["memory_per_gpu"]["weights_bytes"].get<double>() ==
        Approx(a["memory_per_gpu"]["weights_bytes"].get<double>() / 2));
  CHECK(b["memory_per_gpu"]["reserve_bytes"] == a["memory_per_gpu"]["reserve_bytes"]);
  CHECK(b["kv_capacity_tokens"].get<double>() > 3 * a["kv_capacity_tokens"].get<double>());
  // Largest concurrent batch: fp16's KV (11k tokens) holds ~26 of the 64 clients' requests,
  // int8's all 64 (measured 26 -> 64).
  CHECK(b["peak_running"].get<double>() >= 2 * a["peak_running"].get<double>());
  // Saturation throughput: more concurrent decodes per weight read, and half the bytes per
  // read; a 1.3x bar leaves room for the dequantization penalty.
  CHECK(summary(int8, "output_throughput") > 1.3 * summary(fp16, "output_throughput"));
  CHECK(summary(int8, "preemptions") < summary(fp16, "preemptions"));
}

TEST_CASE("Q6: TP across the slow network costs what the link figures predict; PP beats it",
          "[scenario][seed][q6]") {
  const RunOutput out = run_doc(load_scenario("seed_q6_parallelism.json"), "q6.json");
  const double nvlink = instance_median_tpot_ms(out, "tp2_nvlink");
  const double network = instance_median_tpot_ms(out, "tp2_network");
  const double pp = instance_median_tpot_ms(out, "pp2_network");
  // Per decode token: 2 all-reduces x 28 layers; a 2-GPU ring is 2 steps of latency + half
  // the 3072 x 2-byte activation over the bottleneck link.
  //   NVLink:  2 x (2 us + 3072 / 56.25e9) = 4.1 us per all-reduce -> 0.23 ms per token
  //   network: path GPU-PCIe-NIC-switch-NIC-PCIe-GPU, latency 5 + 50 + 50 + 5 us, 1.25 GB/s:
  //            2 x (110 us + 3072 / 1.25e9) = 224.9 us -> 12.59 ms per token
  const double steps = 2 * 28 * 2;
  const double comm_nvlink_ms = steps * (2e-6 + 3072 / 56.25e9) * 1e3;
  const double comm_network_ms = steps * (110e-6 + 3072 / 1.25e9) * 1e3;
  const double predicted_network = nvlink - comm_nvlink_ms + comm_network_ms;
  CHECK(network > nvlink);
  CHECK(network / nvlink == Approx(predicted_network / nvlink).epsilon(0.15));
  // PP sends one activation per stage boundary per step (110 us + 6 KB / 1.25 GB/s) instead of
  // 56 latency-bound all-reduces.
  CHECK(pp < network);
}

TEST_CASE("Q11: p99 E2E degrades monotonically as the output-length predictor's error grows",
          "[scenario][seed][q11]") {
  const json doc = load_scenario("seed_q11_predicted_sizes.json");
  std::vector<double> p99;
  std::vector<int> misroutes;
  for (double sigma : {0.0, 0.5, 1.0, 2.0}) {
    json d = doc;
    d["policies"]["router"]["noise_sigma"] = sigma;
    const RunOutput out = run_doc(d, "q11.json");
    p99.push_back(summary(out, "p99_e2el_ms"));
    misroutes.push_back(out.result["summary"]["misroutes"].get<int>());
  }
  // Measured p99 (s): 15.9, 17.5, 18.0, 21.5; misroutes 0, 21, 57, 133 (at 3.5 req/s: with the
  // elementwise, sampling and launch floors in the cost model, 4 req/s saturated the cluster and
  // queueing hid the misroutes). Each step may not
  // improve p99 (0.5% slack for the tie at the top), and the whole sweep costs >= 10%.
  for (size_t i = 1; i < p99.size(); ++i) {
    CHECK(p99[i] >= 0.995 * p99[i - 1]);
    CHECK(misroutes[i] > misroutes[i - 1]);
  }
  CHECK(misroutes[0] == 0);  // sigma 0 is the oracle
  CHECK(p99.back() > 1.1 * p99.front());
}

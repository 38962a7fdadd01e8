// Mixture-of-experts models and multi-head latent attention against hand calculations:
// parameter counts from the published configs, MLA's KV bytes, weights per GPU under expert
// parallelism, the all-to-all bytes of a step, the grouped expert GEMMs and expert skew.

#include <catch2/catch.hpp>
#include <cmath>

#include "models/cost_model.h"
#include "models/llm.h"
#include "sim/error.h"
#include "test_support.h"

using namespace servesim;
using E = DefaultEfficiency;

namespace {

const ModelSpec& model(const char* name) {
  const ModelSpec* m = find_model(name);
  REQUIRE(m != nullptr);
  return *m;
}

/// A GPU with no fitted kernel table (DefaultEfficiency applies), round figures.
CostModelConfig toy_config(const char* model_name) {
  CostModelConfig c;
  c.gpu.name = "toy";
  c.gpu.memory_bytes = 141e9;
  c.gpu.bf16_flops_per_s = 1000e12;
  c.gpu.fp8_flops_per_s = 2000e12;
  c.gpu.hbm_bandwidth_bytes_per_s = 4e12;
  c.model = model(model_name);
  return c;
}

Path link(double bandwidth_bytes_per_s, double latency_s) {
  Path p;
  p.link_ids = {0};
  p.forward = {true};
  p.bandwidth_bytes_per_s = bandwidth_bytes_per_s;
  p.latency_s = latency_s;
  return p;
}

}  // namespace

TEST_CASE("MoE parameter counts match the published totals and activated parameters", "[moe]") {
  // DeepSeek-V3, per layer: MLA q_a 7168x1536 + norm 1536 + q_b 1536x(128x192) + kv_a
  // 7168x576 + norm 512 + kv_b 512x(128x256) + o (128x128)x7168 = 187,107,328. Dense layer:
  // + MLP 3x7168x18432 + norms 14,336. MoE layer: + (256 + 1) experts of 3x7168x2048 +
  // router 7168x256 + norms. 3 dense + 58 MoE layers, untied embeddings 2x129280x7168,
  // final norm: 671,026,404,352. The card: "671B" total, "36.6B" activated including the
  // 0.9B output head (README_WEIGHTS.md of deepseek-ai/DeepSeek-V3).
  const ModelSpec& v3 = model("DeepSeek-V3");
  CHECK(v3.attention_params() == 187'107'328);
  CHECK(v3.total_params() == 671'026'404'352);
  CHECK(v3.active_params_per_token() == 36'625'603'584);
  CHECK(static_cast<double>(v3.total_params()) / 1e9 == Approx(671).margin(0.5));
  CHECK(static_cast<double>(v3.active_params_per_token()) / 1e9 == Approx(36.6).margin(0.05));
  CHECK(model("DeepSeek-R1").total_params() == v3.total_params());

  // gpt-oss-120b: the model card's 116.83B total and 5.13B active; biases and attention
  // sinks (36 x ~1.1M) are not modelled, hence 0.04B short.
  const ModelSpec& oss = model("gpt-oss-120b");
  CHECK(oss.total_params() == 116'789'048'640);
  CHECK(static_cast<double>(oss.total_params()) / 1e9 == Approx(116.83).margin(0.05));
  CHECK(static_cast<double>(oss.active_params_per_token()) / 1e9 == Approx(5.13).margin(0.01));

  // Qwen3-235B-A22B: "235B total, 22B activated" (rounded to the billion; 21.57B without the
  // 0.62B input embedding, 22.19B with it).
  const ModelSpec& qwen = model("Qwen3-235B-A22B");
  CHECK(qwen.total_params() == 235'093'610'496);
  CHECK(static_cast<double>(qwen.active_params_per_token()) / 1e9 == Approx(22).margin(0.5));

  // Kimi-K2: "1T total, 32B activated" (Hugging Face lists 1.03T); MiniMax-M2: "230B total,
  // 10B activated". Both cards round to the billion (MiniMax's 10.42B to 10B), hence 0.5B.
  CHECK(static_cast<double>(model("Kimi-K2").total_params()) / 1e12 == Approx(1.03).margin(0.01));
  CHECK(static_cast<double>(model("Kimi-K2").active_params_per_token()) / 1e9 ==
        Approx(32).margin(0.5));
  CHECK(static_cast<double>(model("MiniMax-M2").total_params()) / 1e9 == Approx(230).margin(2));
  CHECK(static_cast<double>(model("MiniMax-M2").active_params_per_token()) / 1e9 ==
        Approx(10).margin(0.5));

  // A dense model is unchanged: its active parameters are all but the input embedding.
  const ModelSpec& llama = model("Llama-3.1-8B");
  CHECK(llama.active_params_per_token() == llama.total_params() - llama.embedding_params());
}

TEST_CASE("MLA caches the latent and the rotary key, once per token and layer", "[moe]") {
  const ModelSpec& v3 = model("DeepSeek-V3");
  // 61 layers x (512 + 64) x 2 bytes = 70,272 (MHA with 128 heads of 128 would be 4 MB).
  CHECK(v3.kv_bytes_per_token(DType::kBf16) == 70'272.0);
  CHECK(v3.kv_bytes_per_token(DType::kFp8) == 35'136.0);
  // The latent is replicated on every GPU of an attention-TP group; attention DP groups hold
  // their own requests, so on average a token costs 1/8 of that per GPU with 8 of them.
  CHECK(kv_bytes_per_token_per_gpu(v3, DType::kBf16, 8, 1) == 70'272.0);
  CHECK(kv_bytes_per_token_per_gpu(v3, DType::kBf16, 8, 1, 8) == 8'784.0);
  // Qwen3-235B-A22B (GQA, 4 KV heads of 128): 94 x 2 x 4 x 128 x 2 = 192,512 bytes; TP 8
  // replicates the 4 KV heads, one per GPU: 48,128.
  CHECK(model("Qwen3-235B-A22B").kv_bytes_per_token(DType::kBf16) == 192'512.0);
  CHECK(kv_bytes_per_token_per_gpu(model("Qwen3-235B-A22B"), DType::kBf16, 8, 1) == 48'128.0);
}

TEST_CASE("weights per GPU under expert parallelism", "[moe]") {
  const ModelSpec& v3 = model("DeepSeek-V3");
  // EP 8 with attention TP 8, all FP8 (1 byte): everything over 8 GPUs.
  CHECK(weight_bytes_per_gpu(v3, DType::kFp8, 8, 1, MoeLayout{8, 1}) ==
        Approx(671'026'404'352.0 / 8 - 7168.0 / 8).epsilon(1e-12));  // the final norm aside
  // Attention DP 8: attention, dense MLPs, shared experts, routers and embeddings on every GPU
  // (17.1B parameters); the 58 x 256 routed experts over 8 (81.7B each).
  const double rest = static_cast<double>(
      3 * v3.params_per_layer() +
      58 * (v3.attention_params() + v3.router_params() + 2 * v3.hidden_size + v3.expert_params()) +
      2 * v3.embedding_params());
  const double routed = 58.0 * 256 * static_cast<double>(v3.expert_params()) / 8;
  CHECK(weight_bytes_per_gpu(v3, DType::kFp8, 8, 1, MoeLayout{8, 8}) == Approx(rest + routed));
  CHECK(rest / 1e9 == Approx(17.12).margin(0.01));
  CHECK((rest + routed) / 1e9 == Approx(98.86).margin(0.01));  // fits a 141 GB H200
  // FP4 experts (4.25 bits with MXFP4 scales), bf16 rest: gpt-oss-120b on one GPU.
  const ModelSpec& oss = model("gpt-oss-120b");
  const double experts = 36.0 * 128 * static_cast<double>(oss.expert_params());
  const double other = static_cast<double>(oss.total_params()) - experts;
  CHECK(weight_bytes_per_gpu(oss, DType::kBf16, 1, 1, MoeLayout{}, DType::kFp4) ==
        Approx(other * 2 + experts * 4.25 / 8));
  CHECK(weight_bytes_per_gpu(oss, DType::kBf16, 1, 1, MoeLayout{}, DType::kFp4) / 1e9 ==
        Approx(65.17).margin(0.01));
}

TEST_CASE("EP all-to-all bytes of a step, split between NVLink and the network", "[moe]") {
  // DeepSeek-V3 on 16 GPUs of two nodes, EP 16, attention TP 16 (128 heads / 16). 256 decode
  // tokens: each GPU dispatches its 16. A token's 8 experts hit a given EP group with
  // probability p = 1 - (15/16)^8 = 0.40328, so it goes to 7p = 2.823 peers of the node on
  // NVLink, and once to the other node (hit with probability 1 - 2^-8) over the network, as
  // DeepEP's hierarchical kernels send it. A row is 7168 x 2 bytes; the combine sends as much
  // back; 58 MoE layers.
  CostModelConfig c = toy_config("DeepSeek-V3");
  c.tp = 16;
  c.moe = {16, 1};
  c.ep_gpus_per_node = 8;
  c.ep_intra_path = link(450e9, 2e-6);
  c.ep_inter_path = link(50e9, 10e-6);
  c.tp_path = c.ep_inter_path;
  BatchShape b;
  for (int i = 0; i < 256; ++i) b.add_decode(1000);
  const IterationCost cost = price_iteration(c, b);
  const double row = 7168 * 2;
  const double p = 1 - std::pow(15.0 / 16, 8);
  const double node_hit = 1 - std::pow(0.5, 8);
  CHECK(cost.ep_intra_bytes_per_gpu == Approx(58 * 2 * 16 * 7 * p * row));
  CHECK(cost.ep_inter_bytes_per_gpu == Approx(58 * 2 * 16 * node_hit * row));
  CHECK(cost.ep_inter_bytes_per_gpu / 58 / 2 == Approx(228'480).margin(1));
  // Time: the node's network link carries all 8 GPUs' copies to the other node, 8 x 228,480
  // bytes at 50 GB/s + 10 us = 46.6 us per all-to-all; NVLink (3.4 us) and the receiving GPU's
  // own share (103 rows, 8/15 of them remote: 15.8 us + 10 us) are faster.
  const double a2a_s = 10e-6 + 8 * 16 * node_hit * row / 50e9;
  CHECK(a2a_s == Approx(46.56e-6).epsilon(1e-3));
  CHECK(cost.ep_comm_s == Approx(58 * 2 * a2a_s));
  CHECK(cost.total_s > cost.ep_comm_s);
  // On one node (EP 8, every peer on NVLink): p = 1 - (7/8)^8 = 0.65639; the busiest receiver
  // takes 256 p = 168 rows from its 7 peers: 2 us + 168.04 x 14,336 / 450 GB/s = 7.35 us, above
  // the sender's 32 tokens x 7p copies (6.68 us).
  c.tp = 8;
  c.moe = {8, 1};
  c.ep_gpus_per_node = 8;
  c.ep_inter_path = Path{};
  const IterationCost one_node = price_iteration(c, b);
  const double p8 = 1 - std::pow(7.0 / 8, 8);
  CHECK(one_node.ep_inter_bytes_per_gpu == 0);
  CHECK(one_node.ep_intra_bytes_per_gpu == Approx(58 * 2 * 32 * 7 * p8 * row));
  CHECK(one_node.ep_comm_s == Approx(58 * 2 * (2e-6 + 256 * p8 * row / 450e9)));
}

TEST_CASE("grouped expert GEMMs read the weights of every expert that receives a token", "[moe]") {
  // Qwen3-235B-A22B, one GPU, bf16: one decode token goes to 8 of 128 experts. Expected active
  // experts: 128 x (1 - exp(-8/128)) = 7.75 (Poisson: two picks may share an expert). The
  // gate-up GEMM (n = 3072, k = 4096) is memory bound: 7.75 x 3072 x 4096 x 2 bytes +
  // activations / (4e12 x 0.80).
  CostModelConfig c = toy_config("Qwen3-235B-A22B");
  BatchShape one;
  one.add_decode(100);
  const double active = 128 * (1 - std::exp(-8.0 / 128));
  auto grouped_s = [&](double rows, double act, double n, double k, double bpe_w, double peak) {
    const double compute = 2 * n * k * (rows + act * E::kGemmMHalf) / (peak * E::kGemmCompute);
    const double memory = (act * n * k * bpe_w + rows * (n + k) * 2) / (4e12 * E::kGemmMemory);
    return E::kGemmOverheadS + std::max(compute, memory);
  };
  const double expected_one = 94 * (grouped_s(8, active, 3072, 4096, 2, 1000e12) +
                                    grouped_s(8, active, 4096, 1536, 2, 1000e12));
  CHECK(price_iteration(c, one).expert_gemm_s == Approx(expected_one).epsilon(1e-9));
  // 64 decode tokens: 512 routed rows reach nearly every expert (128 x (1 - e^-4) = 125.7),
  // so the weights read barely grow while the rows grow 64-fold: memory-bound reading of the
  // active experts, the reason small MoE batches cost far more per token than dense ones.
  BatchShape many;
  for (int i = 0; i < 64; ++i) many.add_decode(100);
  const double active64 = 128 * (1 - std::exp(-4.0));
  const double expected_many = 94 * (grouped_s(512, active64, 3072, 4096, 2, 1000e12) +
                                     grouped_s(512, active64, 4096, 1536, 2, 1000e12));
  CHECK(price_iteration(c, many).expert_gemm_s == Approx(expected_many).epsilon(1e-9));
  // Past the two launch overheads per layer, within 1%: the activations' bytes (0.4% of the
  // weights' at 64 tokens) are all that does not scale with the active experts.
  const double overheads = 94 * 2 * E::kGemmOverheadS;
  CHECK((expected_many - overheads) / (expected_one - overheads) ==
        Approx(active64 / active).epsilon(0.01));
  // FP8 experts halve the bytes of that memory-bound read (1 byte a weight); the two 3.9 us
  // launch overheads per layer (8% of the bf16 time) stay.
  c.precision.experts = DType::kFp8;
  CHECK(price_iteration(c, one).expert_gemm_s < 0.55 * expected_one);
}

TEST_CASE("expert skew: the busiest EP group sets the step time", "[moe]") {
  // Zipf exponent 1 over 8 experts on 2 groups: group 0 holds ids 0-3, whose shares are
  // (1 + 1/2 + 1/3 + 1/4) / H_8 = (25/12) / (761/280) = 7000/9132 of the routed tokens.
  ExpertSkew zipf{ExpertSkew::Kind::kZipf, 1.0, {}};
  const std::vector<double> hot = busiest_group_shares(zipf, 8, 2);
  REQUIRE(hot.size() == 4);
  CHECK(hot[0] == Approx(1 / 2.717857).epsilon(1e-6));
  CHECK(hot[0] + hot[1] + hot[2] + hot[3] == Approx(7000.0 / 9132).epsilon(1e-12));
  // Measured loads pick the busiest group wherever it is.
  ExpertSkew measured{ExpertSkew::Kind::kMeasured, 0, {1, 1, 1, 1, 1, 5, 1, 1}};
  const std::vector<double> hot_m = busiest_group_shares(measured, 8, 2);
  CHECK(hot_m[1] == Approx(5.0 / 12));
  CHECK(hot_m[0] + hot_m[1] + hot_m[2] + hot_m[3] == Approx(8.0 / 12));

  // DeepSeek-V3, EP 8 on one node, a compute-bound prefill of 8,192 tokens: uniform routing
  // gives each GPU 8,192 x 8 / 8 = 8,192 routed rows; Zipf 1.0 over the 256 experts puts the
  // 32 most popular on GPU 0: H_32 / H_256 = 4.0585 / 6.1243 = 66.3% of the 65,536 rows,
  // 5.3 times as many. Compute bound, the grouped GEMMs of that GPU grow as rows + 32 active
  // experts x m_half (the ramp of each expert's product), and the step waits for it.
  CostModelConfig c = toy_config("DeepSeek-V3");
  c.tp = 8;
  c.moe = {8, 1};
  c.ep_gpus_per_node = 8;
  c.ep_intra_path = link(450e9, 2e-6);
  c.tp_path = c.ep_intra_path;
  BatchShape prefill;
  prefill.add_prefill(0, 8192, true);
  const IterationCost uniform = price_iteration(c, prefill);
  c.hot_group_expert_shares = busiest_group_shares(zipf, 256, 8);
  double share = 0;
  for (double s : c.hot_group_expert_shares) share += s;
  CHECK(share == Approx(4.058495 / 6.124345).epsilon(1e-6));
  const IterationCost skewed = price_iteration(c, prefill);
  // Within 1%: the 3.9 us launch overhead of each grouped GEMM does not grow.
  const double ramp_rows = 32 * E::kGemmMHalf;
  CHECK(skewed.expert_gemm_s / uniform.expert_gemm_s ==
        Approx((65536 * share + ramp_rows) / (8192 + ramp_rows)).epsilon(0.01));
  CHECK(skewed.total_s > uniform.total_s + 0.8 * (skewed.expert_gemm_s - uniform.expert_gemm_s));
  // The receive side of the dispatch grows with it: a token reaches GPU 0 with probability
  // 1 - (1 - 0.663)^8 = 99.98% instead of 1 - (7/8)^8 = 65.6%: 1.52 times the rows (NVLink
  // latency aside).
  CHECK(skewed.ep_comm_s / uniform.ep_comm_s ==
        Approx((1 - std::pow(1 - share, 8)) / (1 - std::pow(7.0 / 8, 8))).epsilon(0.02));
  // Uniform loads given explicitly are the default.
  c.hot_group_expert_shares = busiest_group_shares(ExpertSkew{}, 256, 8);
  CHECK(price_iteration(c, prefill).total_s == Approx(uniform.total_s).epsilon(1e-12));
}

namespace {

/// DeepSeek-V3 in FP8 on one 8-GPU H200 node, EP 8 with attention DP 8.
nlohmann::json moe_doc() {
  nlohmann::json d = servesim::testing::load_scenario("closed_loop_h100.json");
  d["model"] = "DeepSeek-V3";
  d["precision"] = {{"weights", "fp8"}};
  d["cluster"]["nodes"][0]["gpus"]["type"] = "H200";
  d["instances"][0]["tp"] = 8;
  d["instances"][0]["ep"] = 8;
  d["instances"][0]["attention_dp"] = 8;
  d["workload"]["concurrency"] = 8;
  d["workload"]["requests_per_client"] = 2;
  d["workload"]["warmup_per_client"] = 0;
  return d;
}

std::string moe_error(const nlohmann::json& doc) {
  try {
    servesim::testing::run_doc(doc);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("MoE settings are checked with one-line errors", "[moe][loader]") {
  nlohmann::json d = moe_doc();
  CHECK(moe_error(d) == "(no error)");

  d = moe_doc();
  d["instances"][0]["ep"] = 3;
  CHECK(moe_error(d) ==
        "q11.json: /instances/0/ep: ep 3 must divide tp 8 (the replica's GPUs per stage)");

  d = moe_doc();
  d["instances"][0]["expert_load"] = {{"kind", "measured"}, {"loads", {1, 2, 3}}};
  CHECK(moe_error(d) ==
        "q11.json: /instances/0/expert_load/loads: 3 loads given, the model has 256 experts");

  d = moe_doc();
  d["instances"][0]["expert_load"] = {{"kind", "zipf"}};
  CHECK(moe_error(d) == "q11.json: /instances/0/expert_load: missing required key 'exponent'");

  d = moe_doc();
  d["model"] = "Llama-3.1-8B";
  CHECK(moe_error(d) ==
        "q11.json: /instances/0/ep: model Llama-3.1-8B has no experts (a dense model: more "
        "replicas give attention DP)");

  d = moe_doc();
  d["instances"][0].erase("attention_dp");
  d["instances"][0]["ep"] = 1;
  d["instances"][0]["tp"] = 1;
  CHECK(moe_error(d).find("model DeepSeek-V3 does not fit instance 'replica'") !=
        std::string::npos);

  // An inline MoE model: experts_per_token alone is refused, with num_experts it loads.
  d = moe_doc();
  d["model"] = {{"name", "tiny-moe"},  {"num_layers", 4},       {"hidden_size", 1024},
                {"num_heads", 8},      {"num_kv_heads", 8},     {"ffn_hidden_size", 2048},
                {"vocab_size", 32000}, {"experts_per_token", 2}};
  CHECK(moe_error(d) == "q11.json: /model: missing required key 'num_experts'");
  d["model"]["num_experts"] = 16;
  CHECK(moe_error(d) == "(no error)");
  d["model"]["experts_per_token"] = 17;
  CHECK(moe_error(d) == "q11.json: /model/experts_per_token: must be in [1, 16], got 17");
}

TEST_CASE("shipped MoE scenarios: EP 16 over two nodes against two TP 8 replicas",
          "[moe][scenario]") {
  using servesim::testing::load_scenario;
  using servesim::testing::run_doc;
  const auto ep16 = run_doc(load_scenario("deepseek_v3_ep16_2x8xh200.json")).result;
  const auto tp8 = run_doc(load_scenario("deepseek_v3_tp8x2_2x8xh200.json")).result;
  // At the trace's rate TP 8 x 2 decodes faster: EP 16 reads its experts' and the replicated
  // attention weights for few requests per GPU and waits on 116 all-to-alls a step
  // (scenarios/README.md: 42.8 against 22.1 ms); at least 1.5x apart.
  CHECK(ep16["summary"]["mean_tpot_ms"].get<double>() >
        1.5 * tp8["summary"]["mean_tpot_ms"].get<double>());
  // The network carries only EP traffic: each node's link carries its 8 GPUs' bytes for the
  // other node, out and in.
  const auto& inst = ep16["instances"][0];
  const double inter = inst["ep_inter_node_bytes_per_gpu"].get<double>();
  CHECK(inter > 0);
  for (const auto& link : ep16["links"])
    if (link["kind"] == "network")
      CHECK(link["bytes"].get<double>() == Approx(2 * 8 * inter).epsilon(1e-9));
  // Per GPU, node-local bytes over inter-node ones: 7 (1 - (15/16)^8) / (1 - 2^-8) = 2.834
  // copies per token (the ratio of the per-step figures, whatever the batch).
  CHECK(inst["ep_intra_node_bytes_per_gpu"].get<double>() / inter ==
        Approx(7 * (1 - std::pow(15.0 / 16, 8)) / (1 - std::pow(0.5, 8))).epsilon(1e-9));
  for (const auto& link : tp8["links"]) CHECK(link["kind"] == "nvlink");
  // Saturated (16x the trace's rate), the single EP replica batches more and delivers more.
  auto scaled = [](const char* file) {
    nlohmann::json d = load_scenario(file);
    d["workload"]["rate_scale"] = 16;
    return run_doc(d).result["summary"]["output_throughput"].get<double>();
  };
  CHECK(scaled("deepseek_v3_ep16_2x8xh200.json") >
        1.05 * scaled("deepseek_v3_tp8x2_2x8xh200.json"));
}

TEST_CASE("a degraded network link slows the EP all-to-all across nodes", "[moe][faults]") {
  nlohmann::json doc = servesim::testing::load_scenario("deepseek_v3_ep16_2x8xh200.json");
  doc["workload"]["max_requests"] = 2000;
  const double base = servesim::testing::run_doc(doc).result["summary"]["mean_tpot_ms"];
  // A tenth of node n0's 400 GB/s: its link then carries the 8 GPUs' inter-node copies at
  // 40 GB/s, below each GPU's own 64 GB/s PCIe path, and every MoE layer waits on it
  // (measured 35.3 -> 50.3 ms; 20% is the floor asserted).
  doc["faults"] = {{{"kind", "link_degradation"},
                    {"link", "n0/nic-switch"},
                    {"from_s", 0},
                    {"bandwidth_factor", 0.1}}};
  const double slow = servesim::testing::run_doc(doc).result["summary"]["mean_tpot_ms"];
  CHECK(slow > 1.2 * base);
}

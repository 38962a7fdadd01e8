// The cost model against hand calculations. A custom GPU has no fitted kernel table, so the
// roofline runs with the documented DefaultEfficiency constants and every figure below can be
// recomputed with a pocket calculator.

#include <catch2/catch.hpp>

#include "models/cost_model.h"
#include "models/instance.h"
#include "models/llm.h"
#include "toy_cost_config.h"

using namespace servesim;
using E = DefaultEfficiency;

namespace {

using testing::toy_config;

}  // namespace

TEST_CASE("model shapes give the published parameter and KV sizes", "[cost]") {
  const ModelSpec& m = *find_model("Llama-3.2-3B");
  // Per layer: q 3072x3072 + k,v 2x3072x1024 + o 3072x3072 = 25,165,824; MLP 3x3072x8192 =
  // 75,497,472; two norms 6,144 -> 100,669,440. x28 = 2,818,744,320, + tied embedding
  // 128,256 x 3072 = 394,002,432, + final norm 3,072 = 3,212,749,824 (the "3.21B" of the card).
  CHECK(m.params_per_layer() == 100'669'440);
  CHECK(m.total_params() == 3'212'749'824);
  // KV per token: 2 (K,V) x 28 layers x 8 KV heads x 128 x 2 bytes = 114,688.
  CHECK(m.kv_bytes_per_token(DType::kFp16) == 114'688.0);
  CHECK(m.kv_bytes_per_token(DType::kFp8) == 57'344.0);
  // Llama-2-7B: 6,738,415,616 parameters (untied, MHA).
  CHECK(find_model("Llama-2-7B")->total_params() == 6'738'415'616);
  CHECK(find_model("Llama-3.1-8B")->total_params() == 8'030'261'248);
}

TEST_CASE("a decode-sized GEMM is memory bound, a prefill-sized one compute bound", "[cost]") {
  const CostModelConfig c = toy_config();
  // m=1, n=k=4096, bf16. Compute: 2 n k (m + m_half) / (peak ce)
  //   = 2 x 4096^2 x 46.4 / (100e12 x 0.778) = 2.0012e-5 s.
  // Memory: (n k + m k + m n) x 2 B / (1e12 x 0.80) = 33,570,816 / 8e11 = 4.19635e-5 s.
  // Time = overhead 3.9e-6 + 4.19635e-5 = 4.58635e-5 s.
  CHECK(gemm_time(c, 1, 4096, 4096) == Approx(4.58635e-5).epsilon(1e-5));
  // m=8192: compute 2 x 4096^2 x (8192 + 45.4) / 7.78e13 = 3.5527e-3 s; memory
  // (4096^2 + 2 x 8192 x 4096) x 2 / 8e11 = 2.0972e-4 s -> compute bound: 3.5566e-3 s.
  CHECK(gemm_time(c, 8192, 4096, 4096) == Approx(3.9e-6 + 3.55268e-3).epsilon(1e-4));
}

TEST_CASE("decode attention is linear in context; TP all-reduce follows the ring formula",
          "[cost]") {
  CostModelConfig c = toy_config();
  BatchShape short_ctx, long_ctx;
  short_ctx.add_decode(1000);
  long_ctx.add_decode(2000);
  const IterationCost a = price_iteration(c, short_ctx);
  const IterationCost b = price_iteration(c, long_ctx);
  // 1000 more tokens of K and V per layer: 1000 x 2 x 32 heads x 128 x 2 B = 16,384,000 B;
  // x 32 layers / (1e12 x 0.747) = 7.0186e-4 s more. GEMMs do not change.
  CHECK(b.attention_s - a.attention_s == Approx(32 * 16'384'000.0 / (1e12 * 0.747)).epsilon(1e-9));
  CHECK(b.gemm_s == a.gemm_s);
  BatchShape c3;
  c3.add_decode(3000);
  const double step = price_iteration(c, c3).attention_s - b.attention_s;
  CHECK(step == Approx(b.attention_s - a.attention_s).epsilon(1e-9));

  // TP=2 over a 10 GB/s, 1 ms link: per all-reduce 2(tp-1) steps of latency and bytes/tp each:
  // 2 x 1e-3 + 2 x (tokens x hidden x 2 B / 2) / 1e10. For 1 token: 2e-3 + 8192/1e10.
  c.tp = 2;
  c.tp_path.bandwidth_bytes_per_s = 1e10;
  c.tp_path.latency_s = 1e-3;
  c.tp_path.link_ids = {0};
  const IterationCost t = price_iteration(c, short_ctx);
  CHECK(t.tp_comm_s == Approx(2 * 32 * (2e-3 + 8192 / 1e10)).epsilon(1e-9));
  // Each GPU sends 2(tp-1)/tp x bytes per all-reduce, two all-reduces per layer.
  CHECK(t.tp_bytes_per_gpu == Approx(2 * 32 * 8192.0).epsilon(1e-12));
}

TEST_CASE("prefill attention counts causal pairs", "[cost]") {
  BatchShape b;
  b.add_prefill(0, 4, true);  // pairs 1+2+3+4 = 10
  CHECK(b.prefill_attention_pairs == 10);
  b.add_prefill(6, 2, false);  // each of 2 queries sees 6 cached keys: 12 + (1+2) = 15
  CHECK(b.prefill_attention_pairs == 25);
  CHECK(b.tokens == 6);
  CHECK(b.logit_rows == 1);
}

TEST_CASE("memory plan: weights, reserve and whole KV blocks", "[cost]") {
  // Q11 small node: 8 GiB, Llama-3.2-3B fp16, 10% reserve, 16-token blocks.
  std::vector<NodeSpec> nodes(1);
  nodes[0].name = "C1";
  GpuSpec g;
  g.name = "gpu8g";
  g.memory_bytes = 8589934592.0;
  g.bf16_flops_per_s = 40.6e12;
  g.hbm_bandwidth_bytes_per_s = 448e9;
  nodes[0].gpus = {g};
  nodes[0].pcie = {25e9, 5e-6};
  const Cluster cluster(nodes, LinkSpec{1.25e9, 5e-5});
  InstanceConfig config;
  config.gpus = {0};
  const MemoryPlan plan = plan_memory(config, cluster, *find_model("Llama-3.2-3B"), Precision{});
  // Weights without the final norm counted per shard: 3,212,746,752 x 2 B = 6,425,493,504 B.
  CHECK(plan.weight_bytes == 6'425'493'504.0);
  CHECK(plan.reserve_bytes == Approx(858'993'459.2));
  // Free: 8,589,934,592 - 6,425,493,504 - 858,993,459.2 = 1,305,447,628.8 B; a block is
  // 16 x 114,688 = 1,835,008 B -> 711 whole blocks = 11,376 tokens.
  CHECK(plan.kv_blocks == 711);
  CHECK(plan.kv_bytes == 711 * 1'835'008.0);
  // TP=2 halves the KV heads and weights per GPU.
  CHECK(kv_bytes_per_token_per_gpu(*find_model("Llama-3.2-3B"), DType::kFp16, 2, 1) == 57'344.0);
  // TP beyond the KV head count replicates heads: Llama-3.1-8B has 8 KV heads, at TP 16 each GPU
  // still holds one: 2 x 32 x 1 x 128 x 2 = 16,384 B.
  CHECK(kv_bytes_per_token_per_gpu(*find_model("Llama-3.1-8B"), DType::kBf16, 16, 1) == 16'384.0);
}

TEST_CASE("an overlap scheduler's host time shows only where it exceeds the GPU's", "[cost]") {
  CostModelConfig c = toy_config();
  BatchShape batch;
  for (int i = 0; i < 8; ++i) batch.add_decode(1000);
  c.iteration_overhead_s = 1e-3;
  c.host_per_sequence_s = 1e-4;  // host time 1.8 ms for 8 sequences
  const IterationCost added = price_iteration(c, batch);
  CHECK(added.overhead_s == Approx(1.8e-3));
  const double gpu_s = added.total_s - added.overhead_s;
  REQUIRE(gpu_s > 1.8e-3);  // a 7B decode step on a 1 TB/s GPU: about 14 ms of weights
  c.host_overlapped = true;
  // Hidden behind the GPU's step: the iteration takes the GPU's time alone.
  const IterationCost hidden = price_iteration(c, batch);
  CHECK(hidden.overhead_s == 0.0);
  CHECK(hidden.total_s == Approx(gpu_s).epsilon(1e-12));
  // Host time longer than the step: the iteration takes the host's time, max(GPU, host).
  c.iteration_overhead_s = gpu_s + 5e-3;
  const IterationCost exposed = price_iteration(c, batch);
  CHECK(exposed.total_s == Approx(gpu_s + 5e-3 + 8 * 1e-4).epsilon(1e-12));
}

TEST_CASE("an overlapped host launching an eager iteration needs host and launch time together",
          "[cost]") {
  CostModelConfig c = toy_config();
  c.cuda_graph_max_batch = 0;  // every iteration runs eagerly
  BatchShape batch;
  batch.add_decode(1000);
  const double launch_s = 32 * E::kEagerKernelsPerLayer * E::kEagerLaunchS;  // 32 layers
  const IterationCost bare = price_iteration(c, batch);
  const double gpu_s = bare.total_s - bare.overhead_s;
  REQUIRE(gpu_s > launch_s);  // about 14 ms of weights against 1.9 ms of launches
  // Host preparation and launches each shorter than the GPU's step, together longer: one host
  // thread cannot hide both behind it.
  c.iteration_overhead_s = gpu_s - launch_s / 2;
  c.host_overlapped = true;
  CHECK(price_iteration(c, batch).total_s == Approx(gpu_s + launch_s / 2).epsilon(1e-12));
  // Without overlap the preparation comes first and the launches hide behind the GPU.
  c.host_overlapped = false;
  CHECK(price_iteration(c, batch).total_s == Approx(2 * gpu_s - launch_s / 2).epsilon(1e-12));
}

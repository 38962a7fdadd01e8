// `servesim validate` against the open published tables. The ceilings sit a few points above
// today's MAPE (given per table below) so that a change that makes the model less faithful
// fails, and they should be tightened as the model improves.

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "test_support.h"
#include "tools/validate.h"

using namespace servesim;
using namespace servesim::testing;

namespace {

const ValidationTable& table(const std::vector<ValidationTable>& tables, const std::string& name) {
  for (const auto& t : tables)
    if (t.name == name) return t;
  FAIL("no table " << name);
  return tables.front();
}

}  // namespace

TEST_CASE("validate reproduces the open tables within justified MAPE ceilings", "[validate]") {
  const auto tables = run_validation(std::string(SERVESIM_SHARED_DIR) + "/data");
  REQUIRE(tables.size() == 36);

  // TensorRT-LLM v0.5 batch-1 first-token latency, 20 rows: 13.3% today. Single prefills are
  // GEMM-bound and the GEMM fits are within ~10% on the kernels themselves.
  const auto& first_token = table(tables, "trtllm_first_token");
  CHECK(first_token.rows.size() == 20);
  CHECK(first_token.mape_pct() < 16.0);

  // TensorRT-LLM v0.6.1 static-batch throughput, 37 rows: 17.5% today. Single-GPU rows are
  // within 17%; multi-GPU H100 rows with 2,048 output tokens are predicted up to 2x faster than
  // published (the v0.6.1 stack scaled worse with TP than today's kernels and all-reduce).
  const auto& throughput = table(tables, "trtllm_static_throughput");
  CHECK(throughput.rows.size() == 37);
  CHECK(throughput.mape_pct() < 21.0);
  int single_gpu_rows = 0;
  for (const auto& r : throughput.rows)
    if (r.label.find(" tp1 ") != std::string::npos) {
      ++single_gpu_rows;
      CHECK(r.abs_pct_error() < 17.5);
    }
  CHECK(single_gpu_rows == 21);

  // TensorRT-LLM's PyTorch backend on one H100 at one client, Llama-3.1-8B's architecture
  // (PRs 4407 and 5066, mid-2025): BF16 within 16% (-15% to +12%), FP8 36% fast at every
  // length: that release spent ~6 ms a step on the host where the preset's 2.8 ms (its later
  // figure) hides behind the 3.9 ms the GPU needs. 22.3% in all; ceiling 26%.
  const auto& trt_pytorch = table(tables, "trtllm_pytorch_8b_h100");
  CHECK(trt_pytorch.rows.size() == 8);
  CHECK(trt_pytorch.mape_pct() < 26.0);

  // Qwen3-32B BF16 on one A100 80GB, every request sent at once (gpustack performance lab:
  // vLLM 0.11, TensorRT-LLM 1.2.0rc1), where 61 GiB of weights leave KV for one 32k prompt or a
  // dozen 4k ones: 9.7% over 24 rows today; ceiling 13%. The 2k and 4k runs' durations, the
  // pace KV sets, are within 6% for both engines (checked within 8%). TensorRT-LLM decoded each
  // 32k request alone (47 ms TPOT: its no-evict admission found no KV for a second one), which
  // holds only if its cache is under two requests' 64,158 tokens: it is (61.9k tokens) when the
  // GPU's memory is what CUDA reports (79.15 GiB) and not the marketed 80 GiB (65.0k, 259 ms).
  // Left: vLLM's 1,000 short prompts at once run 27% fast (TTFT 41% low): the measured run
  // took 30% more iterations of the same length than its 2,048-token budget needs.
  const auto& gpustack = table(tables, "gpustack_qwen3_32b_a100");
  CHECK(gpustack.rows.size() == 24);
  CHECK(gpustack.mape_pct() < 13.0);
  for (const auto& r : gpustack.rows) {
    if (r.label.find("96/") != std::string::npos && r.label.find("duration_s") != std::string::npos)
      CHECK(r.abs_pct_error() < 8.0);
    if (r.label == "trtllm 32000/79 x100 mean_tpot_ms") CHECK(r.abs_pct_error() < 15.0);
  }

  // The vLLM benchmark_serving run, simulated end to end: TPOT within 7% (mean +3.7%, median
  // +6.1% today; it was 3% before the vLLM 0.12 host terms per sequence and per prefill token,
  // fitted on the H200 rows, were applied to this vLLM 0.6 run); E2E and duration within 25%. TTFT
  // is under-predicted by ~60% under that burst of 80 prompts at t=0 (vLLM 0.6 ran prefills in
  // eager mode with large host overheads not modelled here).
  const auto& vllm = table(tables, "vllm_llama3_8b_h100");
  for (const auto& r : vllm.rows) {
    if (r.label.find("tpot") != std::string::npos) CHECK(r.abs_pct_error() < 7.0);
    if (r.label.find("e2el") != std::string::npos || r.label == "duration_s" ||
        r.label == "output_throughput")
      CHECK(r.abs_pct_error() < 25.0);
  }

  // Splitwise (2023) prefill and decode-step times for Llama-2-70B and BLOOM-176B at TP 2-8:
  // 45% and 41% today, always predicted faster; TP 2 rows are within ~30%. That stack reached
  // far lower utilisation than the kernels measured with vLLM 0.14/0.19 that the model is
  // fitted on, and lost more with each doubling of TP.
  const auto& prompt = table(tables, "splitwise_prompt");
  const auto& token = table(tables, "splitwise_token");
  CHECK(prompt.rows.size() == 152);
  CHECK(prompt.mape_pct() < 50.0);
  CHECK(token.mape_pct() < 45.0);
  for (const auto& r : token.rows)
    if (r.label.find("llama2-70b a100-80gb tp2") != std::string::npos)
      CHECK(r.abs_pct_error() < 30.0);

  // Vidur's measured projection GEMMs (four per layer) for Llama-2/3 7-8B and 70B on A100 and
  // H100 at TP 1-8, 7,824 rows: 10.0% today, independent of the kernels the fit was made on.
  const auto& vidur = table(tables, "vidur_linear");
  CHECK(vidur.rows.size() == 7824);
  CHECK(vidur.mape_pct() < 12.0);

  // The open aiconfigurator silicon rows (dense models, H200, FP8), simulated in the held-out
  // benchmark's command form. Ceilings a few points above today's MAPE (in the comments).
  struct Ceiling {
    const char* table;
    size_t rows;
    double mape_pct;
  };
  const Ceiling ceilings[] = {
      // The benchmark scenario's output spread (5%) and frontend latency (20 ms) apply to
      // every row (tools/validate.h says why); before them TTFT MAPE was 51.0% over the 199
      // dense rows and 31.8% over the 423 MoE rows, then 28.3% and 41.5% (dense 25.1% since
      // TensorRT-LLM's batch waiting).
      // vLLM 0.12, Llama-3.1-70B, TP 1-8: TPOT 4.2% (decode is weight- and KV-bound, which the
      // fitted kernels price well; the all-reduce follows the measured curve); TTFT 7.6%
      // (67.5% with identical output lengths, whose lockstep the measured runs do not show;
      // 9.8% TTFT and 5.0% TPOT with every preempted context recomputed: the KV-bound TP 1
      // rows at 64 clients thrash without the blocks vLLM's prefix cache keeps).
      {"silicon vllm Llama-3.1-70B H200 tpot", 60, 5.5},
      {"silicon vllm Llama-3.1-70B H200 ttft", 60, 10.0},
      // vLLM 0.12, Llama-3.1-8B (aiperf's 100 reused prompts, drawn shuffled): TPOT 18.5%
      // (median -0.2%), TTFT 64% (-62%: predicted low at every row); at 100-token outputs TPOT
      // hangs on how much prefill the prefix cache saves. With FP8 KV (which vLLM 0.12 does not
      // choose for this checkpoint: policies/engine.cc) the whole pool stays cached: 25.2%, 68%.
      {"silicon vllm Llama-3.1-8B H200 tpot", 21, 22.0},
      {"silicon vllm Llama-3.1-8B H200 ttft", 21, 68.0},
      // SGLang 0.5.6, Llama-3.1-8B: TPOT 14% (~30 ms measured at every TP, host-bound), TTFT 44%
      // (predicted low at 512 clients, where the measured runs queue; repeated measurements of
      // one configuration there differ up to 2.6x).
      {"silicon sglang Llama-3.1-8B H200 tpot", 46, 17.0},
      {"silicon sglang Llama-3.1-8B H200 ttft", 46, 50.0},
      // TensorRT-LLM, Llama-3.1-70B: TPOT 5.9% with its FP8 GEMM adjustment (11.9% without;
      // TP 8 at 128 clients is still 25% low), TTFT 13.8% (23.6% before the 1,024-in /
      // 1,024-out rows at TP 1-4 ran with the batch waiting of their launch script, which puts
      // them at 2-3x the 1,024-in / 8,192-out rows; now predicted 2-36% high, most at 128
      // clients; KV-bound TP 1 rows wait for memory as its no-evict admission makes them, 11-23%
      // high with KV sized as its fraction of the free memory, 27-46% with 90% of the GPU).
      {"silicon trtllm Llama-3.1-70B H200 tpot", 72, 7.0},
      {"silicon trtllm Llama-3.1-70B H200 ttft", 72, 16.0},
      // MoE rows (H200, one node, FP8 or FP4 experts), priced with no MoE-specific fit: the
      // grouped expert GEMMs take the dense GEMM constants. Today's MAPE and median signed
      // error in the comments; ceilings 3-5 points above. Every MoE group's TTFT is predicted
      // low, most at 1,024-token prompts (0.1-0.5x measured) and least at 8,192 (0.5-1.1x):
      // a per-request cost of MoE prefill that the model lacks. Identical output lengths used
      // to hide part of it behind the lockstep queueing (e.g. Kimi-K2 TTFT 7.7% then, 33% now).
      // SGLang 0.5.9 DeepSeek-R1/V3 TP 8 (the 15 V3 rows repeat R1 measurements): TPOT 12.1%
      // (+12% median: predicted high), TTFT 35.1% (-42%).
      {"silicon sglang DeepSeek-R1 H200 tpot", 30, 15.0},
      {"silicon sglang DeepSeek-R1 H200 ttft", 30, 39.0},
      {"silicon sglang DeepSeek-V3 H200 tpot", 15, 15.0},
      {"silicon sglang DeepSeek-V3 H200 ttft", 15, 39.0},
      // SGLang Qwen3-235B-A22B TP 2/4: TPOT 14.0% (-9%), TTFT 65.4% (-62%: predicted low at
      // every row; the measured prefills of 1-4k prompts take twice the fitted GEMM time).
      {"silicon sglang Qwen3-235B-A22B H200 tpot", 24, 17.0},
      {"silicon sglang Qwen3-235B-A22B H200 ttft", 24, 70.0},
      // TensorRT-LLM DeepSeek-R1/V3 (TP 8 with EP 8 or expert TP 8, attention DP 8): TPOT
      // 23.1% / 21.8% (-16% / -21%), TTFT 63.7% / 47.6% (-67% / -62%: predicted low).
      {"silicon trtllm DeepSeek-R1 H200 tpot", 37, 27.0},
      {"silicon trtllm DeepSeek-R1 H200 ttft", 37, 67.0},
      {"silicon trtllm DeepSeek-V3 H200 tpot", 15, 25.0},
      {"silicon trtllm DeepSeek-V3 H200 ttft", 15, 51.0},
      // gpt-oss-120b (MXFP4 experts dequantized to BF16 on Hopper; its sliding-window layers
      // priced as full attention): TensorRT-LLM TPOT 32.6% (-36%; 33.5% without its host time),
      // TTFT 45.5% (-47%); vLLM TPOT 5.8% (-5%), TTFT 29.4% (-32%).
      {"silicon trtllm gpt-oss-120b H200 tpot", 77, 37.0},
      {"silicon trtllm gpt-oss-120b H200 ttft", 77, 50.0},
      {"silicon vllm gpt-oss-120b H200 tpot", 75, 8.0},
      {"silicon vllm gpt-oss-120b H200 ttft", 75, 33.0},
      // vLLM MiniMax-M2.5 TP 4/8 (expert TP): TPOT 17.8% (-17%; 22.3% with FP8 KV), TTFT 27.2%
      // (-29%).
      {"silicon vllm MiniMax-M2 H200 tpot", 84, 21.0},
      {"silicon vllm MiniMax-M2 H200 ttft", 84, 31.0},
      // vLLM 0.12 Qwen3-235B-A22B: TPOT 50.6% (-48%: measured 35-58 ms at every batch and TP,
      // three times SGLang's 16 ms on the same model and GPU; a slower FP8 MoE path than the
      // fitted GEMMs describe), now 49.3% (-47%) with BF16 KV; TTFT 58.9% (-57%).
      {"silicon vllm Qwen3-235B-A22B H200 tpot", 51, 53.0},
      {"silicon vllm Qwen3-235B-A22B H200 ttft", 51, 63.0},
      // vLLM Kimi-K2.5 (Kimi-K2's language model, INT4 experts, expert TP 8): TPOT 15.7% (-15%),
      // TTFT 33.1% (-33%).
      {"silicon vllm Kimi-K2 H200 tpot", 45, 19.0},
      {"silicon vllm Kimi-K2 H200 ttft", 45, 37.0},
  };
  for (const auto& c : ceilings) {
    const auto& t = table(tables, c.table);
    INFO(c.table << ": " << t.mape_pct() << "%");
    CHECK(t.rows.size() == c.rows);
    CHECK(t.mape_pct() < c.mape_pct);
  }
}

TEST_CASE("validate writes its rows as JSON and fails cleanly on a missing data folder",
          "[validate][cli]") {
  const std::string out = tmp_path("validate.json");
  std::filesystem::remove(out);
  REQUIRE(run_cli("validate --data " + std::string(SERVESIM_SHARED_DIR) + "/data -o " + out) == 0);
  const auto j = nlohmann::json::parse(read_text(out));
  CHECK(j["tables"].size() == 36);
  CHECK(j["tables"][0]["predictions"].size() == 20);
  std::string err;
  CHECK(run_cli("validate --data /nonexistent", &err) == 2);
  CHECK(err ==
        "error: /nonexistent/validation-open/trtllm_v0.5_first_token_latency_bs1.csv: "
        "cannot open\n");
}

TEST_CASE("the benchmark's output spread breaks the clients' lockstep", "[validate][cli]") {
  // Llama-3.1-70B FP8 on one H200, 8,192-token prompts, 1,024-token outputs: one prompt fills
  // an iteration, so a prompt that arrives during another's prefill waits all of it.
  auto mean_ttft_ms = [](int concurrency, double spread) {
    return run_benchmark(
               fmt::format("--set /model=Llama-3.1-70B --set /engine=vllm "
                           "--set /instances/0/tp=1 --set /precision/weights=fp8 "
                           "--set /cluster/nodes/0/gpus/type=H200 "
                           "--set /workload/concurrency={} --set /workload/input_tokens=8192 "
                           "--set /workload/output_tokens=1024 --set /workload/output_spread={}",
                           concurrency, spread))["summary"]["mean_ttft_ms"]
        .get<double>();
  };
  const auto scenario =
      nlohmann::json::parse(read_text(source_path("scenarios/closed_loop_h100.json")));
  CHECK(scenario["workload"]["output_spread"].get<double>() == kBenchmarkOutputSpread);
  CHECK(scenario["engine_overrides"]["frontend_latency_s"].get<double>() ==
        kBenchmarkFrontendLatencyS);
  const double alone_ms = mean_ttft_ms(1, kBenchmarkOutputSpread);  // one prefill, no queue
  const double lockstep_ms = mean_ttft_ms(4, 0);
  const double spread_ms = mean_ttft_ms(4, kBenchmarkOutputSpread);
  // In lockstep the four clients finish in consecutive iterations every round, so after the
  // opening burst every request but one a round waits a whole other prefill: about 1.8 x.
  CHECK(lockstep_ms > 1.6 * alone_ms);
  // Out of step, only the burst (a tenth of the measured requests, waiting 1.5 prefills on
  // average: +0.15) and chance overlaps (prefills fill ~18% of the time: about +0.1) remain.
  // The measured row (vLLM, H200) is 1.21 x the lone prefill servesim predicts.
  CHECK(spread_ms > 1.1 * alone_ms);
  CHECK(spread_ms < 1.45 * alone_ms);
}

TEST_CASE("a pool of prompts larger than the prefix cache hits by the order it is drawn in",
          "[validate][cli]") {
  // Llama-3.1-8B BF16 on one H100, 4 clients, 2,048-token prompts from a pool of 100, 4 passes.
  // With 60% of the GPU reserved the KV holds 139,600 tokens, 68 prompts: fewer than the pool.
  auto run = [](const std::string& order, double reserve) {
    return run_benchmark(fmt::format(
        "--set /model=Llama-3.1-8B --set /engine=vllm --set /workload/concurrency=4 "
        "--set /workload/input_tokens=2048 --set /workload/output_tokens=16 "
        "--set /workload/distinct_prompts=100 --set /workload/requests_per_client=100 "
        "--set /workload/prompt_order={} --set '/policies/kv={{\"reserve_fraction\": {}}}'",
        order, reserve));
  };
  const auto hits = [](const nlohmann::json& r) {
    return r["summary"]["prefix_reuse_fraction"].get<double>();
  };
  const auto sequential = run("sequential", 0.6);
  const auto shuffled = run("shuffle", 0.6);
  const auto drawn = run("random", 0.6);
  REQUIRE(shuffled["instances"][0]["kv_capacity_tokens"].get<int64_t>() < 100 * 2048 * 3 / 4);
  // In turn, each prompt comes back after the 99 others: least-recently-used eviction has
  // dropped it every time, so not one repeat hits.
  CHECK(hits(sequential) == 0.0);
  // Shuffled, a repeat comes back after d requests, d triangular on [1, 199]; it hits when d is
  // under about the 66 prompts the cache holds beside the running ones: P = 66^2 / 2 / 100^2
  // = 0.22 of the repeats, 0.23 measured. Allow 0.12-0.36 for the eviction order's details.
  CHECK(hits(shuffled) > 0.12);
  CHECK(hits(shuffled) < 0.36);
  // With replacement an LRU cache of c of n equally likely items hits about c / n of draws
  // (0.66; 0.61 measured with the cold start): well above the shuffled order.
  CHECK(hits(drawn) > hits(shuffled) + 0.2);
  // Fewer prefills, shorter queues: TTFT falls in the same order.
  const auto ttft = [](const nlohmann::json& r) {
    return r["summary"]["mean_ttft_ms"].get<double>();
  };
  CHECK(ttft(sequential) > ttft(shuffled));
  CHECK(ttft(shuffled) > ttft(drawn));
  // A cache that holds the whole pool (nothing reserved: 532,816 tokens) finds every repeat
  // after the first pass whatever the order (0.75 of the tokens: the first pass misses), and
  // the orders agree within 2 points.
  const double whole = hits(run("sequential", 0.0));
  CHECK(whole > 0.7);
  CHECK(hits(run("shuffle", 0.0)) == Approx(whole).margin(0.02));
}

TEST_CASE("TensorRT-LLM's batch waiting holds each prompt back 20 decode steps",
          "[validate][cli]") {
  // InferenceMAX's TensorRT-LLM Llama-70B launch script turns batch waiting on for 1k/1k below
  // TP 8 (tools/validate.cc). Measured on H200 at TP 1 with 4 clients: 562 ms TTFT at 1k/1k
  // against 176 ms at 1k/8k, 19 decode steps (20.1 ms) apart.
  auto run = [](const std::string& batcher, const std::string& extra = "") {
    return run_benchmark(
        fmt::format("--set /model=Llama-3.1-70B --set /engine=trtllm "
                    "--set /instances/0/tp=1 --set /precision/weights=fp8 "
                    "--set /cluster/nodes/0/gpus/type=H200 "
                    "--set /workload/concurrency=4 --set /workload/input_tokens=1024 "
                    "--set /workload/output_tokens=1024 --set '/policies/batcher={}' {}",
                    batcher, extra))["summary"];
  };
  const auto off = run(R"({"max_num_batched_tokens": 16384})");
  const std::string waiting =
      R"({"max_num_batched_tokens": 16384, "batch_wait_timeout_iters": 20, )"
      R"("batch_wait_max_tokens_ratio": 0.9})";
  const auto on = run(waiting);
  const double off_ms = off["mean_ttft_ms"].get<double>();
  const double on_ms = on["mean_ttft_ms"].get<double>();
  const double step_ms = on["mean_tpot_ms"].get<double>();
  // A lone prompt never fills 90% of the budget, so each waits out the 20 iterations; the
  // opening burst, with nothing decoding yet, does not wait.
  CHECK(on_ms - off_ms > 17 * step_ms);
  CHECK(on_ms - off_ms < 20 * step_ms);
  CHECK(std::abs(on_ms / 562.2 - 1) < 0.1);
  // Decode steps are unchanged: the waits only move prefills.
  CHECK(std::abs(on["mean_tpot_ms"].get<double>() / off["mean_tpot_ms"].get<double>() - 1) < 0.02);
  // As in TensorRT-LLM, a timeout of 0 holds nothing whatever the ratio, nor does a ratio of
  // 0 or one that a single prompt fills.
  auto ttft_ms = [&](const std::string& batcher) {
    return run(batcher)["mean_ttft_ms"].get<double>();
  };
  CHECK(ttft_ms(R"({"max_num_batched_tokens": 16384, "batch_wait_max_tokens_ratio": 0.9})") ==
        off_ms);
  CHECK(ttft_ms(R"({"max_num_batched_tokens": 16384, "batch_wait_timeout_iters": 20})") == off_ms);
  CHECK(ttft_ms(R"({"max_num_batched_tokens": 16384, "batch_wait_timeout_iters": 20, )"
                R"("batch_wait_max_tokens_ratio": 0.05})") == off_ms);
  // Every step of a wait is planned on its own, so closed-form decode changes nothing.
  const double exact_ms = run(waiting, "--exact-steps")["mean_ttft_ms"].get<double>();
  CHECK(std::abs(exact_ms / on_ms - 1) < 1e-9);
}

TEST_CASE("TensorRT-LLM's mid-2025 FP8 runs on one H100 keep the pace of a 6 ms host step",
          "[validate][cli]") {
  // The FP8 rows of trtllm_pytorch_8b_h100 (PR 5066, one client, 8 requests; tools/validate.cc)
  // run as validate runs them, with the preset's host time and with 6 ms an iteration: the
  // release took ~6.0 ms a step where the GPU needs ~3.9 ms, so the preset is ~36% fast and the
  // 6 ms floor lands within 1% at 1,000/1,000 (the step is all host) and within 13% at
  // 20,000/2,000, whose long context adds GPU time the floor then no longer covers.
  const auto mean_latency_ms = [](int64_t isl, int64_t osl, const std::string& extra) {
    return run_benchmark(fmt::format(
        "--set /model=Llama-3.1-8B --set /engine=trtllm "
        "--set /precision/weights=fp8 --set /workload/concurrency=1 "
        "--set /workload/input_tokens={} --set /workload/output_tokens={} "
        "--set /workload/requests_per_client=8 --set /workload/warmup_per_client=0 "
        "--set /workload/output_spread=0 --set /engine_overrides/frontend_latency_s=0 "
        "--set '/policies/batcher={{\"max_num_seqs\": 512, "
        "\"max_num_batched_tokens\": {}}}' {}",
        isl, osl, isl >= 5000 ? isl : 8192, extra))["summary"]["mean_e2el_ms"]
        .get<double>();
  };
  const std::string six_ms = "--set /engine_overrides/iteration_overhead_s=0.006";
  CHECK(mean_latency_ms(1000, 1000, "") / 6047.2742 < 0.7);
  CHECK(std::abs(mean_latency_ms(1000, 1000, six_ms) / 6047.2742 - 1) < 0.01);
  CHECK(std::abs(mean_latency_ms(20000, 2000, six_ms) / 14315.1906 - 1) < 0.13);
}

TEST_CASE("the closed-loop H100 benchmark runs in the documented command form", "[validate][cli]") {
  // The exact form of the accuracy check: model, engine, TP, concurrency and lengths by --set.
  auto run = [](const std::string& model, const std::string& engine, int tp, int concurrency) {
    return run_benchmark(
        fmt::format("--set /model={} --set /engine={} --set /instances/0/tp={} "
                    "--set /workload/concurrency={} --set /workload/input_tokens=2048 "
                    "--set /workload/output_tokens=256",
                    model, engine, tp, concurrency));
  };
  const auto base = run("Qwen3-32B", "vllm", 4, 32);
  const auto& s = base["summary"];
  REQUIRE(s.contains("mean_ttft_ms"));
  REQUIRE(s.contains("mean_tpot_ms"));
  // 2 x concurrency warm-up requests, discarded, then 10 x concurrency measured ones.
  CHECK(s["completed"].get<int>() == 384);
  CHECK(s["warmup_requests_discarded"].get<int>() == 64);
  CHECK(base["instances"][0]["tp"] == 4);
  CHECK(base["instances"][0]["gpus"].size() == 4);
  CHECK(base["instances"][0]["cost_source"] == "fit");
  // Decode of a 65 GB model at TP 4 reads ~16 GB of weights per step per GPU (~6 ms at the
  // fitted HBM efficiency) plus KV and all-reduces: TPOT must land between 8 and 40 ms.
  CHECK(s["mean_tpot_ms"].get<double>() > 8.0);
  CHECK(s["mean_tpot_ms"].get<double>() < 40.0);
  // More GPUs per replica cut TPOT; more clients raise it.
  const auto tp8 = run("Qwen3-32B", "vllm", 8, 32);
  CHECK(tp8["summary"]["mean_tpot_ms"].get<double>() < s["mean_tpot_ms"].get<double>());
  const auto c128 = run("Qwen3-32B", "vllm", 4, 128);
  CHECK(c128["summary"]["mean_tpot_ms"].get<double>() > s["mean_tpot_ms"].get<double>());
  for (const char* engine : {"sglang", "trtllm"}) {
    const auto e = run("Llama-3.1-8B", engine, 1, 8);
    // The bare name is an alias of the engine's default version, which the result names.
    CHECK(e["servesim"]["engine"].get<std::string>().rfind(std::string(engine) + "@", 0) == 0);
    CHECK(e["summary"]["mean_ttft_ms"].get<double>() > 0);
  }
}

// MFU and MBU: the work of the priced kernels against hand counts, the closed-form stretches
// against step-by-step runs, and the time series against the whole-run figures.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "models/cost_model.h"
#include "models/llm.h"
#include "models/power.h"
#include "test_support.h"
#include "toy_cost_config.h"

namespace servesim {
namespace {

using testing::load_scenario;
using testing::run_doc;

TEST_CASE("an iteration's flops and bytes are those of its kernels", "[utilisation]") {
  CostModelConfig c = testing::toy_config();
  BatchShape prefill;
  prefill.add_prefill(0, 1000, true);
  const IterationCost p = price_iteration(c, prefill);
  // Llama-2-7B layer GEMM weights: 4096 x (3 x 4096) + 4096 x 4096 + 3 x 11008 x 4096
  // = 202,375,168. 1000 tokens: 2 x 1000 x that = 404,750,336,000 flops; causal attention:
  // 4 x 128 x 32 heads x (1000 x 1001 / 2) pairs = 8,200,192,000; x 32 layers.
  CHECK(p.layer_flops == Approx(32 * (404'750'336'000.0 + 8'200'192'000.0)).epsilon(1e-12));
  // One row through the LM head: 2 x 32000 x 4096.
  CHECK(p.head_flops == 262'144'000.0);
  // Every weight is read once per layer (bf16); activations come on top.
  CHECK(p.layer_hbm_bytes > 32 * 202'375'168.0 * 2);
  CHECK(p.layer_flops_step_growth == 0);

  BatchShape decode;
  decode.add_decode(500);
  decode.add_decode(1500);
  const IterationCost d = price_iteration(c, decode);
  // Two decode rows: 2 x 2 x 202,375,168 GEMM flops, 4 x 128 x 32 x 2000 attention flops;
  // K and V of 2000 tokens, 2 x 32 heads x 128 x 2 bytes = 16 KiB each, read per layer.
  CHECK(d.layer_flops == Approx(32 * (4 * 202'375'168.0 + 16384.0 * 2000)).epsilon(1e-12));
  CHECK(d.layer_hbm_bytes > 32 * (202'375'168.0 * 2 + 16384.0 * 2000));
  // Next step of a stretch: one more token for each of the two requests.
  CHECK(d.layer_flops_step_growth == 32 * 16384.0 * 2);
  CHECK(d.layer_hbm_bytes_step_growth == 32 * 16384.0 * 2);
  CHECK(mfu_peak_flops_per_s(c) == 100e12);
}

TEST_CASE("closed-form stretches count the work of every step", "[utilisation]") {
  nlohmann::json doc = load_scenario("closed_loop_h100.json");
  const RunOutput fast = run_doc(doc, "closed_loop_h100.json");
  RunOptions exact;
  exact.exact_steps = true;
  const RunOutput step = run_doc(doc, "closed_loop_h100.json", exact);
  const auto& f = fast.result["gpus"][0];
  const auto& s = step.result["gpus"][0];
  // The two modes run the same iterations; sums in another order differ by rounding only.
  CHECK(f["mfu"].get<double>() == Approx(s["mfu"].get<double>()).epsilon(1e-9));
  CHECK(f["mbu"].get<double>() == Approx(s["mbu"].get<double>()).epsilon(1e-9));
  // A decode-heavy run on one H100: bandwidth bound, MBU well above MFU, both below 1.
  CHECK(f["mbu"].get<double>() > f["mfu"].get<double>());
  CHECK(f["mbu"].get<double>() < 1.0);
  CHECK(f["mfu"].get<double>() > 0.01);
}

TEST_CASE("the utilisation series add up to the whole run's", "[utilisation]") {
  nlohmann::json doc = load_scenario("closed_loop_h100.json");
  doc["instances"][0]["pp"] = 2;
  doc["output"]["sample_interval_s"] = 0.5;
  const RunOutput out = run_doc(doc, "closed_loop_h100.json");
  const auto& r = out.result;
  const auto& ts = r["timeseries"];
  const auto& times = ts["time_s"];
  const auto& series = ts["instances"][0];
  REQUIRE(series["stages"].size() == 2);
  REQUIRE(r["gpus"].size() == 2);
  CHECK(r["gpus"][0]["pp_stage"] == 0);
  CHECK(r["gpus"][1]["pp_stage"] == 1);
  // Busy seconds within the windows add up to the replica's busy time: the last sample comes
  // after the last iteration ends, and in-flight work is counted pro rata.
  double busy_s = 0;
  std::vector<double> mfu_s(2, 0.0);
  for (size_t k = 1; k < times.size(); ++k) {
    const double span = times[k].get<double>() - times[k - 1].get<double>();
    busy_s += series["busy_fraction"][k].get<double>() * span;
    for (size_t st = 0; st < 2; ++st)
      mfu_s[st] += series["stages"][st]["mfu"][k].get<double>() * span;
    CHECK(series["busy_fraction"][k].get<double>() <= 1.0 + 1e-9);
  }
  // The run ends with its last sample, which closes the window of the last iteration.
  const double makespan_s = times.back().get<double>();
  // The series is the replica's busy time; each stage is busy only while a micro-batch is in
  // it (all of the replica's busy time when a round has at least PP requests, half with one).
  CHECK(busy_s ==
        Approx(r["instances"][0]["busy_fraction"].get<double>() * makespan_s).epsilon(1e-6));
  for (const auto& gpu : r["gpus"])
    CHECK(gpu["busy_fraction"].get<double>() <=
          r["instances"][0]["busy_fraction"].get<double>() + 1e-12);
  for (size_t st = 0; st < 2; ++st)
    CHECK(mfu_s[st] == Approx(r["gpus"][st]["mfu"].get<double>() * makespan_s).epsilon(1e-6));
  // Layers split evenly (32 over 2): the last stage also runs the LM head.
  CHECK(r["gpus"][1]["mfu"].get<double>() > r["gpus"][0]["mfu"].get<double>());
}

TEST_CASE("power rises from the idle floor to TDP with the busier unit", "[energy]") {
  CHECK(PowerModel::tdp_fraction(0, 0) == PowerModel::kIdleFraction);
  CHECK(PowerModel::tdp_fraction(0.5, 0.1) == Approx(0.2927 + 0.7647 * 0.5).epsilon(1e-12));
  CHECK(PowerModel::tdp_fraction(0.1, 0.5) == PowerModel::tdp_fraction(0.5, 0.1));
  CHECK(PowerModel::tdp_fraction(0.2, 0.99) == 1.0);  // capped at the board limit
}

TEST_CASE("energy is the GPUs' power over the run, per request and per token", "[energy]") {
  nlohmann::json doc = load_scenario("closed_loop_h100.json");
  doc["instances"][0]["tp"] = 2;
  // Clients that think between requests leave the GPUs idle part of the time.
  doc["workload"]["concurrency"] = 2;
  doc["workload"]["think_time_s"] = 5.0;
  const RunOutput out = run_doc(doc, "closed_loop_h100.json");
  const auto& r = out.result;
  const auto& s = r["summary"];
  const auto& times = r["timeseries"]["time_s"];
  const double makespan_s = times.back().get<double>();
  double energy_j = 0;
  for (const auto& g : r["gpus"]) {
    CHECK(g["tdp_w"] == 700.0);
    const double busy = g["busy_fraction"].get<double>();
    REQUIRE(busy < 0.9);
    REQUIRE(busy > 0.1);
    // Idle at the floor, busy between the floor and TDP.
    const double floor_j = 700.0 * PowerModel::kIdleFraction * makespan_s;
    CHECK(g["energy_j"].get<double>() > floor_j);
    CHECK(g["energy_j"].get<double>() < floor_j + 700.0 * busy * makespan_s);
    CHECK(g["mean_power_w"].get<double>() ==
          Approx(g["energy_j"].get<double>() / makespan_s).epsilon(1e-12));
    energy_j += g["energy_j"].get<double>();
  }
  CHECK(s["energy_j"].get<double>() == Approx(energy_j).epsilon(1e-12));
  // Every request here counts its tokens (no warm-up is excluded from energy).
  CHECK(s["energy_per_request_j"].get<double>() ==
        Approx(energy_j / s["completed"].get<double>()).epsilon(1e-12));
  CHECK(s["energy_per_output_token_j"].get<double>() > 0);
  // The power series integrates to the same energy (two GPUs of one stage).
  const auto& power = r["timeseries"]["instances"][0]["stages"][0]["power_w"];
  double series_j = 0;
  for (size_t k = 1; k < times.size(); ++k)
    series_j += power[k].get<double>() * (times[k].get<double>() - times[k - 1].get<double>());
  CHECK(2 * series_j == Approx(energy_j).epsilon(1e-6));

  // A GPU without a TDP has no power or energy, and then the run has no total.
  nlohmann::json custom = load_scenario("seed_q11_four_node.json");
  custom["workload"]["requests"] = 20;
  const RunOutput unrated = run_doc(custom, "seed_q11_four_node.json");
  CHECK_FALSE(unrated.result["gpus"][0].contains("energy_j"));
  CHECK_FALSE(unrated.result["summary"].contains("energy_j"));
  custom["cluster"]["gpu_types"]["gpu8g"]["tdp_w"] = 220;
  custom["cluster"]["gpu_types"]["gpu12g"]["tdp_w"] = 350;
  const RunOutput rated = run_doc(custom, "seed_q11_four_node.json");
  CHECK(rated.result["gpus"][0]["tdp_w"] == 220.0);
  CHECK(rated.result["summary"].contains("energy_per_output_token_j"));
}

}  // namespace
}  // namespace servesim

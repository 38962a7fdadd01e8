// Randomized properties over valid scenarios: variants of the shipped ones (seeds, rates, prefix
// caching, KV block sizes, offload, batchers, routers, instance counts) must each run to the end
// with their conservation laws intact (the run throws InvariantError otherwise), keep every
// request's times in order, produce no NaN, and repeat byte for byte under the same seed.

#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "sim/error.h"
#include "test_support.h"

namespace servesim {
namespace {

using nlohmann::json;

/// Where a NaN or infinity hides in the result, or "" (nlohmann would write them as null).
std::string non_finite_at(const nlohmann::ordered_json& j, const std::string& at = "") {
  if (j.is_number_float()) return std::isfinite(j.get<double>()) ? "" : (at.empty() ? "/" : at);
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it)
      if (auto bad = non_finite_at(it.value(), at + "/" + it.key()); !bad.empty()) return bad;
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i)
      if (auto bad = non_finite_at(j[i], at + "/" + std::to_string(i)); !bad.empty()) return bad;
  }
  return "";
}

/// Scales a workload's rate and trims its size so a variant runs in milliseconds.
void shrink_workload(json& w, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> rate_factor(0.3, 3.0);
  if (w.contains("rate_per_s")) w["rate_per_s"] = w["rate_per_s"].get<double>() * rate_factor(rng);
  const std::string kind = w["kind"];
  if (kind == "poisson") w["requests"] = std::uniform_int_distribution<int>(20, 150)(rng);
  if (kind == "sessions") {
    w["sessions"] = std::uniform_int_distribution<int>(8, 24)(rng);
    w["turns"] = std::uniform_int_distribution<int>(4, 10)(rng);
  }
  if (kind == "trace") {
    w["max_requests"] = std::uniform_int_distribution<int>(50, 300)(rng);
    w["time_scale"] = std::uniform_real_distribution<double>(0.05, 2.0)(rng);
  }
  if (kind == "closed_loop") {
    const int concurrency = std::uniform_int_distribution<int>(1, 24)(rng);
    w["concurrency"] = concurrency;
    // Either form of the request count: a total, or per client (after a warm-up barrier).
    if (rng() % 2) {
      w.erase("requests_per_client");
      w.erase("warmup_per_client");
      w["requests"] = concurrency * std::uniform_int_distribution<int>(2, 6)(rng);
    } else {
      w.erase("requests");
      w.erase("warmup_requests");
      w["requests_per_client"] = std::uniform_int_distribution<int>(1, 5)(rng);
      w["warmup_per_client"] = std::uniform_int_distribution<int>(0, 2)(rng);
    }
    // Output lengths spread around the given one (up to the largest spread accepted), or not.
    if (rng() % 2)
      w["output_spread"] = std::uniform_real_distribution<double>(0.0, 0.5)(rng);
    else
      w.erase("output_spread");
  }
}

struct Variant {
  json doc;
  RunOptions options;
  std::string label;
};

Variant make_variant(int index, std::mt19937_64& rng) {
  static const std::vector<std::string> bases = {
      "seed_q9_multiturn_vram.json",   "seed_q10_kv_offload.json", "seed_q11_four_node.json",
      "seed_q7_static_batching.json",  "closed_loop_h100.json",    "seed_q6_parallelism.json",
      "seed_q11_predicted_sizes.json", "seed_q8_no_kv_cache.json", "azure_conv_8xh100.json"};
  auto pick = [&](auto const& options) {
    return options[std::uniform_int_distribution<size_t>(0, options.size() - 1)(rng)];
  };
  auto coin = [&] { return std::bernoulli_distribution(0.5)(rng); };
  const std::string base = bases[static_cast<size_t>(index) % bases.size()];
  Variant v;
  v.doc = testing::load_scenario(base);
  v.label = base;
  json& doc = v.doc;
  doc["seed"] = std::uniform_int_distribution<int>(0, 10000)(rng);
  shrink_workload(doc["workload"], rng);

  json& policies = doc["policies"];
  json& kv = policies["kv"];
  if (!kv.is_object()) kv = json::object({{"name", "gpu_only"}});
  if (kv.value("name", "gpu_only") != "no_cache") {
    // Offload needs host memory, which only the single-node T4 scenarios give.
    if (base == "seed_q9_multiturn_vram.json" || base == "seed_q10_kv_offload.json") {
      const bool offload = coin();
      kv = offload ? json{{"name", "host_offload"},
                          {"fetch", pick(std::vector<std::string>{"naive", "prefetch"})}}
                   : json{{"name", "gpu_only"}};
      if (offload) kv["host_memory_fraction"] = pick(std::vector<double>{0.01, 0.1, 0.5});
      kv["reserve_fraction"] = 0.05;
    }
    kv["prefix_caching"] = coin();
    kv["block_tokens"] = pick(std::vector<int>{8, 16, 32, 64});
  }

  json batcher = policies.value("batcher", json::object());
  if (batcher.value("name", "") == "continuous") {
    batcher["max_num_seqs"] = pick(std::vector<int>{1, 4, 16, 64});
    batcher["max_num_batched_tokens"] = pick(std::vector<int>{256, 2048, 8192});
    batcher["chunked_prefill"] = coin();
    batcher["prefill_priority"] = coin();
  } else if (batcher.value("name", "") == "static") {
    batcher["batch_size"] = pick(std::vector<int>{1, 8, 64});
    batcher["fill_timeout_s"] = pick(std::vector<double>{0, 1, 30});
  }
  if (!batcher.empty()) policies["batcher"] = batcher;

  // Routers that need no class table may take fewer replicas.
  json& router = policies["router"];
  // Wide noise draws predictions far past any real length (once an overflow in the predictor).
  if (router.contains("noise_sigma"))
    router["noise_sigma"] = pick(std::vector<double>{0.0, 0.5, 1.0, 3.0, 1000.0});
  if (doc["instances"].size() > 1 && coin()) {
    router =
        json{{"name", pick(std::vector<std::string>{"round_robin", "least_loaded", "cache_aware",
                                                    "session_affinity", "kv_aware"})}};
    const auto keep = std::uniform_int_distribution<size_t>(1, doc["instances"].size())(rng);
    doc["instances"].erase(doc["instances"].begin() + static_cast<std::ptrdiff_t>(keep),
                           doc["instances"].end());
  }
  // Replicas across the network (Q6): their iteration traffic as flows or priced, and PP
  // replicas with or without micro-batches (a draw only there, so other variants stay put).
  if (base == "seed_q6_parallelism.json") {
    policies["iteration_traffic"] = pick(std::vector<std::string>{"auto", "flows", "priced"});
    for (json& inst : doc["instances"])
      if (inst.value("pp", 1) > 1) inst["pp_microbatching"] = coin();
  }
  v.options.exact_steps = coin();
  v.label = fmt::format("variant {} of {}: seed {}, exact_steps {}, policies {}", index, base,
                        doc["seed"].get<int>(), v.options.exact_steps, policies.dump());
  return v;
}

void check_run(const Variant& v) {
  INFO(v.label);
  INFO("workload " << v.doc["workload"].dump() << ", instances " << v.doc["instances"].size());
  RunOutput out;
  REQUIRE_NOTHROW(out = testing::run_doc(v.doc, v.label.substr(0, 40), v.options));
  const auto& requests = out.result.at("requests");
  CHECK(requests.size() == out.result["summary"]["arrived"].get<size_t>());
  for (const auto& r : requests) {
    if (r.at("status") != "finished") continue;
    const double arrival = r.at("arrival_s"), first = r.at("first_token_s"),
                 finish = r.at("finish_s");
    INFO("request " << r.dump());
    REQUIRE(arrival <= first);
    REQUIRE(first <= finish);
  }
  CHECK(non_finite_at(out.result).empty());
  const RunOutput again = testing::run_doc(v.doc, v.label.substr(0, 40), v.options);
  CHECK(again.result.dump() == out.result.dump());
}

TEST_CASE("random valid scenario variants conserve requests and KV, keep times ordered, repeat",
          "[properties]") {
  // A fixed generator seed: a failure names its variant and reproduces.
  std::mt19937_64 rng(20261130);
  constexpr int kVariants = 1200;
  for (int i = 0; i < kVariants; ++i) check_run(make_variant(i, rng));
}

TEST_CASE("multi-turn sessions with a prefix cache strand no request when a plan preempts all",
          "[properties]") {
  // These seeds once left requests waiting on an idle replica (exit 3: not conserved).
  for (int seed : {5, 23, 29}) {
    Variant v;
    v.doc = testing::load_scenario("seed_q9_multiturn_vram.json");
    v.doc["seed"] = seed;
    if (seed == 5) v.doc["workload"]["rate_per_s"] = 1.1;
    v.label = fmt::format("seed_q9_multiturn_vram seed {}", seed);
    check_run(v);
  }
}

}  // namespace
}  // namespace servesim

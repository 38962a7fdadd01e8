// Latency statistics past the exact sample count: sketch percentiles within the stated relative
// error of the exact ones on adversarial distributions, exact counts, means and deviations, and
// the result saying which percentiles are approximate.

#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "sim/latency_samples.h"
#include "sim/latency_values.h"
#include "sim/quantile_sketch.h"
#include "sim/stats.h"
#include "test_support.h"

using namespace servesim;
using namespace servesim::testing;

namespace {

constexpr double kPercentiles[] = {0, 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100};
/// The stated bound, with room for the final multiplication's rounding.
constexpr double kBound = QuantileSketch::kRelativeError * (1 + 1e-12);

bool within_bound(double estimate, double exact) {
  return std::abs(estimate - exact) <= kBound * std::abs(exact);
}

/// The distributions a log-bucket sketch could get wrong: two far-apart modes (percentiles at
/// the edge between them), a heavy tail spanning many octaves, a constant, tiny and huge values.
std::vector<double> adversarial(const std::string& kind, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> v;
  for (size_t i = 0; i < n; ++i) {
    const double u = unit(rng);
    if (kind == "bimodal")  // 1% in the far mode: p99 sits on the edge
      v.push_back(i % 100 == 0 ? 5000 + 100 * u : 2 + 0.01 * u);
    else if (kind == "heavy tail")  // Pareto, alpha 1.1: values over ~8 decades
      v.push_back(0.5 / std::pow(1 - u, 1 / 1.1));
    else if (kind == "constant")
      v.push_back(17.25);
    else  // "wide": from microseconds to days, uniform in log
      v.push_back(std::exp(std::log(1e-3) + u * (std::log(1e8) - std::log(1e-3))));
  }
  return v;
}

}  // namespace

TEST_CASE("sketch percentiles are within the stated bound of the exact ones", "[stats][sketch]") {
  CHECK(QuantileSketch::kRelativeError < 0.001);
  for (const std::string kind : {"bimodal", "heavy tail", "constant", "wide"}) {
    INFO(kind);
    std::vector<double> values = adversarial(kind, 200'001, 3);
    QuantileSketch sketch;
    for (double v : values) sketch.add(v);
    std::sort(values.begin(), values.end());
    REQUIRE(sketch.count() == values.size());
    for (double p : kPercentiles) {
      INFO("p" << p);
      CHECK(within_bound(sketch.percentile(p), percentile_sorted(values, p)));
    }
    // Extremes are the exact minimum and maximum; a constant is exact everywhere.
    CHECK(sketch.percentile(0) == values.front());
    CHECK(sketch.percentile(100) == values.back());
    if (kind == "constant") CHECK(sketch.percentile(50) == 17.25);
    // Memory: 2^9 buckets an octave over the range seen, not one per sample.
    CHECK(static_cast<double>(sketch.buckets()) <=
          512 * (std::log2(values.back() / values.front()) + 2));
  }
}

TEST_CASE("merged sketches equal the sketch of all samples", "[stats][sketch]") {
  const std::vector<double> values = adversarial("heavy tail", 50'000, 5);
  QuantileSketch all, a, b;
  for (size_t i = 0; i < values.size(); ++i) {
    all.add(values[i]);
    (i % 3 ? a : b).add(values[i]);
  }
  a.add(0.0, 4);
  a.add(-2.0);
  all.add(0.0, 4);
  all.add(-2.0);
  a.merge(b);
  CHECK(a.count() == all.count());
  for (double p : kPercentiles) CHECK(a.percentile(p) == all.percentile(p));
  CHECK(a.percentile(0) == -2.0);
}

TEST_CASE("per-request latencies: exact up to the limit, then sketched", "[stats][sketch]") {
  for (const std::string kind : {"bimodal", "heavy tail", "constant"}) {
    INFO(kind);
    std::vector<double> values = adversarial(kind, 30'000, 9);
    LatencyValues at_limit(values.size()), past_limit(values.size() - 1);
    for (double v : values) {
      at_limit.add(v);
      past_limit.add(v);
    }
    nlohmann::ordered_json want, exact, sketched;
    add_latency_summary(want, "x", values);
    CHECK(at_limit.add_summary(exact, "x"));
    CHECK(exact == want);  // bit for bit the vector statistics
    CHECK_FALSE(past_limit.add_summary(sketched, "x"));
    CHECK(past_limit.count() == values.size());
    for (const char* key : {"median_x", "p90_x", "p95_x", "p99_x"})
      CHECK(within_bound(sketched[key].get<double>(), want[key].get<double>()));
    // Mean and deviation from every sample, not from the sketch.
    CHECK(sketched["mean_x"].get<double>() == Approx(want["mean_x"].get<double>()).epsilon(1e-11));
    if (kind == "constant") {
      CHECK(sketched["mean_x"].get<double>() == 17.25);
      CHECK(sketched["std_x"].get<double>() == 0.0);
    } else {
      CHECK(sketched["std_x"].get<double>() == Approx(want["std_x"].get<double>()).epsilon(1e-10));
    }
  }
}

TEST_CASE("inter-token gaps past the stored-entry limit: sketched, sums still exact",
          "[stats][sketch]") {
  // Decode-like series and distinct gaps: more entries than the store may hold at this limit.
  std::mt19937_64 rng(21);
  RunLengthSamples small(1 << 12), reference;
  std::vector<double> expanded_ms;
  for (int i = 0; i < 3'000; ++i) {
    StepSeries steps;
    steps.first_ns = 1 + static_cast<int64_t>(rng() % 90'000'000);
    steps.d0_s = static_cast<double>(rng() % 1'000'000) / 1e7 + 1e-4;
    steps.slope_s = static_cast<double>(rng() % 50'000) * 1e-9;
    steps.steps = 1 + static_cast<int64_t>(rng() % 200);
    const uint64_t count = 1 + rng() % 8;
    small.add_steps(steps, count);
    reference.add_steps(steps, count);
    small.add(Time{steps.first_ns / 3}, 2);
    reference.add(Time{steps.first_ns / 3}, 2);
    for (int64_t j = 0; j < steps.steps; ++j)
      expanded_ms.insert(expanded_ms.end(), count, Time{steps.duration_ns(j)}.to_ms());
    expanded_ms.insert(expanded_ms.end(), 2, Time{steps.first_ns / 3}.to_ms());
  }
  std::sort(expanded_ms.begin(), expanded_ms.end());
  REQUIRE_FALSE(small.exact());
  REQUIRE(reference.exact());
  CHECK(small.stored_runs() == 0);  // the entries are gone
  CHECK(small.count() == expanded_ms.size());
  for (double p : kPercentiles) {
    INFO("p" << p);
    CHECK(reference.percentile_ms(p) == percentile_sorted(expanded_ms, p));
    CHECK(within_bound(small.percentile_ms(p), percentile_sorted(expanded_ms, p)));
  }
  // The integer sums are the same, so mean and deviation are bit for bit the exact store's.
  CHECK(small.mean_ms() == reference.mean_ms());
  CHECK(small.std_ms() == reference.std_ms());
  nlohmann::ordered_json out;
  CHECK_FALSE(add_latency_summary(out, "itl_ms", small));
  CHECK(add_latency_summary(out, "itl_ms", reference));
}

TEST_CASE("a run past its exact sample count says which percentiles are approximate",
          "[stats][sketch]") {
  nlohmann::json doc = load_scenario("seed_q11_four_node.json");
  doc["workload"]["requests"] = 200;
  const RunOutput exact = run_doc(doc);
  CHECK_FALSE(exact.result["summary"].contains("approximate_percentiles"));
  doc["output"]["exact_samples"] = 50;
  const RunOutput sketched = run_doc(doc);
  const auto& s = sketched.result["summary"];
  REQUIRE(s.contains("approximate_percentiles"));
  const auto& a = s["approximate_percentiles"];
  CHECK(a["exact_samples"] == 50);
  CHECK(a["relative_error"] == 0.001);
  CHECK(a["metrics"] ==
        nlohmann::ordered_json::array({"ttft_ms", "tpot_ms", "itl_ms", "e2el_ms", "queue_ms"}));
  // Same run, same bytes; and every sketched figure within the bound of the exact run's.
  CHECK(run_doc(doc).result.dump() == sketched.result.dump());
  for (const char* metric : {"ttft_ms", "tpot_ms", "itl_ms", "e2el_ms", "queue_ms"})
    for (const char* stat : {"median_", "p90_", "p95_", "p99_"}) {
      const std::string key = std::string(stat) + metric;
      INFO(key);
      CHECK(within_bound(s[key].get<double>(), exact.result["summary"][key].get<double>()));
    }
  CHECK(s["completed"] == exact.result["summary"]["completed"]);
}

TEST_CASE("exact percentiles by selection equal those of the sorted values", "[stats]") {
  // Sizes around the ranks' edges (1, 2, ranks that coincide), ties, and the adversarial kinds.
  std::mt19937_64 rng(5);
  for (size_t n : {1, 2, 3, 7, 100, 101, 1'000, 16'385, 20'001}) {
    for (const std::string kind : {"bimodal", "heavy tail", "constant", "wide"}) {
      INFO(n << " " << kind);
      std::vector<double> values = adversarial(kind, n, 11);
      // Ties: a quarter of the values repeat others.
      for (size_t i = 0; i < n / 4; ++i) values[rng() % n] = values[rng() % n];
      std::vector<double> sorted = values;
      std::sort(sorted.begin(), sorted.end());
      for (double p : kPercentiles) {
        std::vector<double> scratch = values;
        CHECK(percentile_select(scratch, p) == percentile_sorted(sorted, p));
      }
      std::vector<double> scratch = values;
      nlohmann::ordered_json got;
      add_latency_summary(got, "x", scratch);
      CHECK(got["median_x"].get<double>() == percentile_sorted(sorted, 50));
      CHECK(got["p90_x"].get<double>() == percentile_sorted(sorted, 90));
      CHECK(got["p95_x"].get<double>() == percentile_sorted(sorted, 95));
      CHECK(got["p99_x"].get<double>() == percentile_sorted(sorted, 99));
      std::sort(scratch.begin(), scratch.end());
      CHECK(scratch == sorted);  // reordered, nothing lost
    }
  }
}

TEST_CASE("order statistics by radix select equal a sort's at every rank", "[stats]") {
  // Above 16,384 values the selection buckets values by their leading distinct bits and recurses
  // into the buckets holding the ranks: signs, zeros, a huge outlier that widens the first
  // buckets to whole octaves, and a cluster of near-equal values that needs several rounds.
  std::mt19937_64 rng(17);
  std::normal_distribution<double> normal(0, 1);
  std::vector<double> values;
  for (int i = 0; i < 20'000; ++i) values.push_back(normal(rng));
  for (int i = 0; i < 3'000; ++i) values.push_back(0.0);
  for (int i = 0; i < 20'000; ++i)
    values.push_back(1.0 + 1e-12 * static_cast<double>(rng() % 1000));
  values.push_back(1e300);
  values.push_back(-1e-300);
  std::shuffle(values.begin(), values.end(), rng);
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  std::vector<uint64_t> ranks;
  for (uint64_t r = 0; r < values.size(); r += 1 + rng() % 7) {
    ranks.push_back(r);
    if (rng() % 5 == 0) ranks.push_back(r);  // repeated ranks
  }
  ranks.push_back(values.size() - 1);
  std::vector<double> out(ranks.size());
  std::vector<double> scratch = values;
  select_order_statistics(scratch, ranks, out);
  size_t mismatches = 0;
  for (size_t i = 0; i < ranks.size(); ++i) mismatches += out[i] != sorted[ranks[i]];
  CHECK(mismatches == 0);
  std::sort(scratch.begin(), scratch.end());
  CHECK(scratch == sorted);  // reordered at most, nothing lost
}

// Generated workloads: Poisson arrivals, length distributions, closed-loop clients, sessions,
// seeds, and their errors.
#include <numeric>

#include "trace_test_support.h"

using namespace servesim;
using namespace servesim::trace_testing;

TEST_CASE("poisson arrivals have the stated mean gap", "[traces]") {
  const int64_t n = 20000;
  const auto workload = build(R"({"kind": "poisson", "rate_per_s": 5, "requests": 20000,
                                  "input_tokens": 100, "output_tokens": {"fixed": 10}})");
  const auto specs = run_open(*workload);
  REQUIRE(specs.size() == static_cast<size_t>(n));
  CHECK(specs[0].arrival == Time{});
  CHECK(non_decreasing(specs));
  std::vector<double> gaps;
  for (size_t i = 1; i < specs.size(); ++i)
    gaps.push_back((specs[i].arrival - specs[i - 1].arrival).to_s());
  // Exponential gaps: the mean of n has standard error (1 / rate) / sqrt(n) = 0.0014 s; allow
  // 4 standard errors.
  const double tolerance = 4 * 0.2 / std::sqrt(static_cast<double>(n - 1));
  CHECK(mean_of(gaps) == Approx(0.2).margin(tolerance));
  CHECK(std::all_of(specs.begin(), specs.end(), [](const RequestSpec& s) {
    return s.prompt_tokens == 100 && s.output_tokens == 10;
  }));

  // duration_s alone ends the stream; the count is Poisson(rate * duration) = 1000 +- 32.
  const auto timed = build(R"({"kind": "poisson", "rate_per_s": 10, "duration_s": 100,
                               "input_tokens": 1, "output_tokens": 1})");
  const auto in_window = run_open(*timed);
  CHECK(std::abs(static_cast<double>(in_window.size()) - 1000.0) < 4 * std::sqrt(1000.0));
  CHECK(in_window.back().arrival < Time::from_s(100));
}

TEST_CASE("length distributions draw what they promise", "[traces]") {
  auto sampler = [](const std::string& input, const std::string& output, uint64_t seed = 7) {
    nlohmann::json doc = {{"in", nlohmann::json::parse(input)},
                          {"out", nlohmann::json::parse(output)}};
    JsonObject o = JsonValue::root(doc, "d.json").object();
    return LengthSampler(parse_length_dist(o.at("in"), kTraceDir),
                         parse_length_dist(o.at("out"), kTraceDir), seed);
  };
  const int n = 20000;

  SECTION("fixed and uniform") {
    auto s = sampler(R"({"fixed": 128})", R"({"uniform": [10, 20]})");
    std::vector<double> outs;
    int64_t lo = 100, hi = 0;
    bool all_fixed = true;
    for (int i = 0; i < n; ++i) {
      const auto d = s.draw();
      all_fixed = all_fixed && d.prompt_tokens == 128;
      lo = std::min(lo, d.output_tokens);
      hi = std::max(hi, d.output_tokens);
      outs.push_back(static_cast<double>(d.output_tokens));
    }
    CHECK(all_fixed);
    CHECK(lo == 10);  // both ends included
    CHECK(hi == 20);
    // Uniform on 11 values: sd = sqrt((11^2 - 1) / 12) = 3.16; 4 standard errors.
    CHECK(mean_of(outs) == Approx(15.0).margin(4 * 3.16 / std::sqrt(n)));
  }

  SECTION("lognormal, with and without clamps") {
    auto s =
        sampler(R"({"lognormal": [5, 0.5]})", R"({"lognormal": [5, 1], "min": 100, "max": 200})");
    std::vector<double> logs;
    int64_t lo = 1000, hi = 0;
    for (int i = 0; i < n; ++i) {
      const auto d = s.draw();
      logs.push_back(std::log(static_cast<double>(d.prompt_tokens)));
      lo = std::min(lo, d.output_tokens);
      hi = std::max(hi, d.output_tokens);
    }
    // log of the draw is N(5, 0.5) up to rounding to whole tokens (< 0.005 here).
    CHECK(mean_of(logs) == Approx(5.0).margin(4 * 0.5 / std::sqrt(n) + 0.005));
    CHECK(lo == 100);  // clamped at both ends: sigma 1 reaches far past both
    CHECK(hi == 200);
  }

  SECTION("empirical, paired when both use the same file") {
    const auto columns = read_csv_columns(kShareGpt, {"num_prefill_tokens", "num_decode_tokens"});
    REQUIRE(columns[0].size() == 30731);
    std::set<std::pair<int64_t, int64_t>> rows;
    std::set<int64_t> prompts(columns[0].begin(), columns[0].end());
    for (size_t i = 0; i < columns[0].size(); ++i) rows.emplace(columns[0][i], columns[1][i]);

    const std::string path = "lengths/sharegpt_8k_filtered_stats_llama2_tokenizer.csv";
    auto paired = sampler(R"({"empirical": ")" + path + R"(", "column": "num_prefill_tokens"})",
                          R"({"empirical": ")" + path + R"(", "column": "num_decode_tokens"})");
    CHECK(paired.paired());
    int64_t not_a_row = 0;
    std::vector<double> drawn;
    for (int i = 0; i < n; ++i) {
      const auto d = paired.draw();
      if (!rows.count({d.prompt_tokens, d.output_tokens})) ++not_a_row;
      drawn.push_back(static_cast<double>(d.prompt_tokens));
    }
    CHECK(not_a_row == 0);
    double sum = 0, sum_sq = 0;
    for (int64_t v : columns[0]) {
      sum += static_cast<double>(v);
      sum_sq += static_cast<double>(v) * static_cast<double>(v);
    }
    const double mean = sum / static_cast<double>(columns[0].size());
    const double sd = std::sqrt(sum_sq / static_cast<double>(columns[0].size()) - mean * mean);
    CHECK(mean_of(drawn) == Approx(mean).margin(4 * sd / std::sqrt(n)));

    auto single =
        sampler(R"({"empirical": ")" + path + R"(", "column": "num_prefill_tokens"})", "64");
    CHECK_FALSE(single.paired());
    int64_t not_a_prompt = 0;
    for (int i = 0; i < 1000; ++i) {
      const auto d = single.draw();
      if (!prompts.count(d.prompt_tokens) || d.output_tokens != 64) ++not_a_prompt;
    }
    CHECK(not_a_prompt == 0);
  }

  SECTION("bad distributions are rejected with their pointer") {
    auto error = [&](const std::string& dist) {
      try {
        sampler(dist, "1");
      } catch (const InputError& e) {
        return std::string(e.what());
      }
      return std::string("no error");
    };
    CHECK(error("0") == "d.json: /in: must be in [1, 16777216], got 0");
    CHECK(error("4294967297") == "d.json: /in: must be in [1, 16777216], got 4294967297");
    CHECK(error(R"({"uniform": [5, 2]})") == "d.json: /in/uniform: hi (2) must be >= lo (5)");
    CHECK(error(R"({"uniform": [5, 9], "max": 3})") ==
          "d.json: /in/max: unknown key; valid here: uniform");
    CHECK(error(R"({"fixed": 1, "uniform": [1, 2]})") ==
          "d.json: /in: expected exactly one distribution kind of fixed, uniform, lognormal, "
          "empirical; got fixed, uniform");
    CHECK(error(R"({"lognormal": [5, 1], "min": 10, "max": 5})") ==
          "d.json: /in/max: must be >= min (10), got 5");
    CHECK(error(R"({"empirical": "lengths/sharegpt_8k_filtered_stats_llama2_tokenizer.csv",
                    "column": "prompt"})") ==
          kShareGpt +
              ":1: missing column 'prompt'; header has: num_prefill_tokens, "
              "num_decode_tokens, num_total_tokens, pd_ratio");
  }
}

TEST_CASE("closed-loop clients keep at most N outstanding and send exactly `requests`",
          "[traces]") {
  auto workload = build(R"({"kind": "closed_loop", "concurrency": 4, "requests": 30,
                            "input_tokens": 2048, "output_tokens": 256,
                            "warmup_requests": 3, "think_time_s": 0.5})");
  CHECK(workload->warmup_requests() == 3);
  Simulator sim;
  std::vector<RequestSpec> sent;
  std::map<int64_t, Time> done_at;  // client -> when its last request finished
  int64_t outstanding = 0, max_outstanding = 0, think_violations = 0;
  workload->start(sim, [&](const RequestSpec& spec) {
    sent.push_back(spec);
    ++outstanding;
    max_outstanding = std::max(max_outstanding, outstanding);
    if (done_at.count(spec.client_id) &&
        spec.arrival != done_at[spec.client_id] + Time::from_s(0.5))
      ++think_violations;
    // Service time varies by client so that completions interleave.
    sim.schedule_in(Time::from_s(1.0 + 0.3 * static_cast<double>(spec.client_id)),
                    Phase::kIterationDone, [&, client = spec.client_id] {
                      --outstanding;
                      done_at[client] = sim.now();
                      workload->on_request_done(sim, client);
                    });
  });
  sim.run();
  REQUIRE(sent.size() == 30);
  CHECK(max_outstanding == 4);
  CHECK(outstanding == 0);
  CHECK(think_violations == 0);
  for (int64_t c = 0; c < 4; ++c) {
    CHECK(sent[static_cast<size_t>(c)].client_id == c);  // all at t = 0, in client order
    CHECK(sent[static_cast<size_t>(c)].arrival == Time{});
  }
  CHECK(std::all_of(sent.begin(), sent.end(), [](const RequestSpec& s) {
    return s.prompt_tokens == 2048 && s.output_tokens == 256;
  }));

  // requests defaults to 10 per client; the client count caps the first wave.
  auto defaulted = build(R"({"kind": "closed_loop", "concurrency": 3,
                             "input_tokens": {"uniform": [1, 9]}, "output_tokens": 1})");
  CHECK(defaulted->warmup_requests() == 0);
  Simulator sim2;
  int64_t count = 0;
  defaulted->start(sim2, [&](const RequestSpec& spec) {
    ++count;
    sim2.schedule_in(Time::from_s(1), Phase::kIterationDone,
                     [&, client = spec.client_id] { defaulted->on_request_done(sim2, client); });
  });
  sim2.run();
  CHECK(count == 30);
}

TEST_CASE("a closed loop's output spread keeps the mean and stays in its band", "[traces]") {
  auto draw_outputs = [](const std::string& spread) {
    auto workload = build(R"({"kind": "closed_loop", "concurrency": 8, "requests": 4000,
                              "input_tokens": 512, "output_tokens": 1000)" +
                          spread + "}");
    Simulator sim;
    std::vector<int64_t> outputs;
    workload->start(sim, [&](const RequestSpec& spec) {
      outputs.push_back(spec.output_tokens);
      CHECK(spec.prompt_tokens == 512);  // only outputs spread
      sim.schedule_in(Time::from_s(1), Phase::kIterationDone,
                      [&, client = spec.client_id] { workload->on_request_done(sim, client); });
    });
    sim.run();
    return outputs;
  };
  const auto fixed = draw_outputs("");
  CHECK(std::all_of(fixed.begin(), fixed.end(), [](int64_t o) { return o == 1000; }));
  const auto spread = draw_outputs(R"(, "output_spread": 0.05)");
  REQUIRE(spread.size() == 4000);
  const auto [lo, hi] = std::minmax_element(spread.begin(), spread.end());
  CHECK(*lo >= 950);
  CHECK(*hi <= 1050);
  // Uniform on [950, 1050]: the extremes are reached within a token over 4,000 draws, and the
  // mean (sd of the mean 29 / sqrt(4000) = 0.46 tokens) is within 2 tokens of 1,000.
  CHECK(*lo <= 951);
  CHECK(*hi >= 1049);
  const double mean =
      static_cast<double>(std::accumulate(spread.begin(), spread.end(), int64_t{0})) / 4000.0;
  CHECK(mean == Approx(1000).margin(2));
  CHECK(draw_outputs(R"(, "output_spread": 0.05)") == spread);  // same seed, same lengths
  CHECK_THROWS_WITH(build(R"({"kind": "closed_loop", "concurrency": 1, "input_tokens": 1,
                              "output_tokens": 1, "output_spread": 0.7})"),
                    Catch::Contains("/output_spread") && Catch::Contains("0.5"));
}

TEST_CASE("a closed loop draws pooled prompts as aiperf's samplers do", "[traces]") {
  // The prompt id a request carries: its blocks' prefix hashes are (prompt + 1) << 40 | block.
  auto prompts_of = [](const std::string& order) {
    auto workload = build(R"({"kind": "closed_loop", "concurrency": 3, "requests": 400,
                              "input_tokens": 64, "output_tokens": 1, "distinct_prompts": 10)" +
                          order + "}");
    Simulator sim;
    std::vector<uint64_t> prompts;
    workload->start(sim, [&](const RequestSpec& spec) {
      REQUIRE(spec.prefix_block_hashes.size() == 4);  // 64 tokens in blocks of 16
      prompts.push_back((spec.prefix_block_hashes[0] >> 40) - 1);
      sim.schedule_in(Time::from_s(1), Phase::kIterationDone,
                      [&, client = spec.client_id] { workload->on_request_done(sim, client); });
    });
    sim.run();
    REQUIRE(prompts.size() == 400);
    return prompts;
  };
  const auto pass = [](const std::vector<uint64_t>& prompts, size_t k) {
    return std::vector<uint64_t>(prompts.begin() + static_cast<std::ptrdiff_t>(10 * k),
                                 prompts.begin() + static_cast<std::ptrdiff_t>(10 * k + 10));
  };
  const std::vector<uint64_t> in_turn = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};

  // sequential: prompt k mod P.
  const auto sequential = prompts_of(R"(, "prompt_order": "sequential")");
  for (size_t k = 0; k < 40; ++k) CHECK(pass(sequential, k) == in_turn);

  // shuffle (the default): every pass of P requests is a permutation of the pool, reshuffled
  // each pass. Of 40 passes of 10, the chance that two neighbours repeat an order is 39/10!
  // (1e-5), that one is in turn 40/10!.
  const auto shuffled = prompts_of("");
  CHECK(prompts_of(R"(, "prompt_order": "shuffle")") == shuffled);  // the default, same seed
  for (size_t k = 0; k < 40; ++k) {
    auto sorted = pass(shuffled, k);
    CHECK(sorted != in_turn);
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == in_turn);
    if (k > 0) CHECK(pass(shuffled, k) != pass(shuffled, k - 1));
  }

  // random: with replacement, so passes repeat prompts (a pass of 10 without a repeat has
  // probability 10!/10^10 = 3.6e-4), and each prompt is drawn 40 times on average (binomial
  // sd 6: within 25 of it with margin).
  const auto drawn = prompts_of(R"(, "prompt_order": "random")");
  std::vector<int64_t> counts(10, 0);
  for (uint64_t p : drawn) ++counts[static_cast<size_t>(p)];
  CHECK(*std::min_element(counts.begin(), counts.end()) > 15);
  CHECK(*std::max_element(counts.begin(), counts.end()) < 65);
  int64_t passes_with_repeats = 0;
  for (size_t k = 0; k < 40; ++k) {
    auto sorted = pass(drawn, k);
    std::sort(sorted.begin(), sorted.end());
    if (sorted != in_turn) ++passes_with_repeats;
  }
  CHECK(passes_with_repeats >= 38);

  CHECK_THROWS_WITH(build(R"({"kind": "closed_loop", "concurrency": 1, "input_tokens": 16,
                              "output_tokens": 1, "prompt_order": "random"})"),
                    Catch::Contains("/prompt_order") && Catch::Contains("distinct_prompts"));
  CHECK_THROWS_WITH(build(R"({"kind": "closed_loop", "concurrency": 1, "input_tokens": 16,
                              "output_tokens": 1, "distinct_prompts": 5, "prompt_order": "lru"})"),
                    Catch::Contains("/prompt_order") && Catch::Contains("\"lru\""));
}

TEST_CASE("sessions carry their context and share prefixes turn to turn", "[traces]") {
  const auto workload = build(R"({"kind": "sessions", "sessions": 50, "turns": 4,
      "rate_per_s": 2, "think_time_s": 30, "input_tokens": 100, "output_tokens": 50})");
  const auto specs = run_open(*workload);
  REQUIRE(specs.size() == 200);
  CHECK(non_decreasing(specs));
  std::map<int64_t, std::vector<RequestSpec>> by_session;
  for (const auto& s : specs) by_session[s.session_id].push_back(s);
  REQUIRE(by_session.size() == 50);
  std::set<uint64_t> seen_hashes;
  int64_t bad = 0;
  for (const auto& [id, turns] : by_session) {
    REQUIRE(turns.size() == 4);
    for (size_t k = 0; k < turns.size(); ++k) {
      const auto& t = turns[k];
      if (t.prompt_tokens != 100 + 150 * static_cast<int64_t>(k)) ++bad;
      if (t.prefix_block_tokens != 16) ++bad;
      if (static_cast<int64_t>(t.prefix_block_hashes.size()) != t.prompt_tokens / 16) ++bad;
      if (k > 0) {
        const auto& prev = turns[k - 1].prefix_block_hashes;
        if (!std::equal(prev.begin(), prev.end(), t.prefix_block_hashes.begin())) ++bad;
        if (t.arrival != turns[k - 1].arrival + Time::from_s(30)) ++bad;
      }
    }
    // No block id is shared with another session.
    for (uint64_t h : turns.back().prefix_block_hashes)
      if (!seen_hashes.insert(h).second) ++bad;
  }
  CHECK(bad == 0);
  CHECK(by_session.at(0).front().arrival == Time{});
}

TEST_CASE("the same seed gives the same workload, another seed another", "[traces]") {
  const std::string text = R"({"kind": "poisson", "rate_per_s": 3, "requests": 500,
      "input_tokens": {"lognormal": [6, 1]}, "output_tokens": {"uniform": [1, 500]}})";
  auto key = [](const std::vector<RequestSpec>& specs) {
    std::vector<std::tuple<int64_t, int64_t, int64_t>> out;
    for (const auto& s : specs) out.emplace_back(s.arrival.ns, s.prompt_tokens, s.output_tokens);
    return out;
  };
  const auto a = key(run_open(*build(text, 42)));
  const auto b = key(run_open(*build(text, 42)));
  const auto c = key(run_open(*build(text, 43)));
  CHECK(a == b);
  CHECK(a != c);

  const std::string sessions = R"({"kind": "sessions", "sessions": 20, "turns": 3,
      "rate_per_s": 1, "think_time_s": 5, "input_tokens": {"uniform": [10, 90]},
      "output_tokens": {"lognormal": [4, 1]}})";
  CHECK(key(run_open(*build(sessions, 5))) == key(run_open(*build(sessions, 5))));
}

TEST_CASE("workload errors name the key and list the choices", "[traces]") {
  CHECK(build_error(R"({"kind": "replay"})") ==
        "scenario.json: /workload/kind: unknown workload kind 'replay'; valid: closed_loop, "
        "gamma, poisson, sessions, trace");
  CHECK(build_error(R"({"kind": "poisson", "rate_per_s": 1, "requests": 5, "input_tokens": 1,
                        "output_tokens": 1, "burst": 2})") ==
        "scenario.json: /workload/burst: unknown key; valid here: duration_s, input_tokens, kind, "
        "output_tokens, rate_per_s, requests");
  CHECK(build_error(R"({"kind": "trace", "format": "azure_csv", "path": "x.csv",
                        "timescale": 2})") ==
        "scenario.json: /workload/timescale: unknown key; valid here: format, kind, "
        "max_requests, path, rate_scale, start_s, time_scale");
  CHECK(build_error(R"({"kind": "trace", "format": "azure", "path": "x.csv"})") ==
        "scenario.json: /workload/format: unknown value 'azure'; valid: azure_csv, "
        "burstgpt_csv, csv, jsonl, mooncake_jsonl");
  CHECK(build_error(R"({"kind": "trace", "format": "azure_csv", "path": "nowhere/x.csv"})") ==
        kTraceDir + "/nowhere/x.csv: cannot open");
  CHECK(build_error(R"({"kind": "poisson", "rate_per_s": 1, "input_tokens": 1,
                        "output_tokens": 1})") ==
        "scenario.json: /workload: needs 'requests' or 'duration_s' (or both) to end");
  CHECK(build_error(R"({"kind": "closed_loop", "concurrency": 2, "requests": 4,
                        "warmup_requests": 4, "input_tokens": 1, "output_tokens": 1})") ==
        "scenario.json: /workload/warmup_requests: must be < requests (4), got 4");
  CHECK(build_error(R"({"kind": "sessions", "sessions": 2, "turns": 2, "rate_per_s": 1,
                        "input_tokens": 1, "output_tokens": 1})") ==
        "scenario.json: /workload: missing required key 'think_time_s'");
}

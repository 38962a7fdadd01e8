// Memory that does not grow with the trace: run-length encoded inter-token latencies give
// exactly the statistics of the expanded samples, and streamed request records are the records
// the result would have held.

#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <random>
#include <sstream>

#include "run/request_record.h"
#include "sim/huge_pages.h"
#include "sim/latency_samples.h"
#include "sim/stats.h"
#include "test_support.h"
#include "tools/output_file.h"

using namespace servesim;
using namespace servesim::testing;
using nlohmann::json;

namespace {

/// Feeds `samples` and the expanded list the same values; checks every statistic.
void check_against_expanded(RunLengthSamples& samples, std::vector<double> expanded_ms) {
  nlohmann::ordered_json want, got;
  add_latency_summary(want, "x", expanded_ms);  // the plain-vector reference
  add_latency_summary(got, "x", samples);
  std::sort(expanded_ms.begin(), expanded_ms.end());
  REQUIRE(samples.count() == expanded_ms.size());
  // Percentiles pick and interpolate the same order statistics: bit for bit equal.
  for (const char* key : {"median_x", "p90_x", "p95_x", "p99_x"})
    CHECK(got[key].get<double>() == want[key].get<double>());
  for (double p : {0.0, 1.0, 33.3, 50.0, 99.9, 100.0})
    CHECK(samples.percentile_ms(p) == percentile_sorted(expanded_ms, p));
  // Mean and std differ only by floating-point summation: the reference adds millions of
  // doubles one by one (relative error ~1e-11 here), the store sums integer nanoseconds exactly.
  CHECK(got["mean_x"].get<double>() ==
        Approx(want["mean_x"].get<double>()).epsilon(1e-9).margin(1e-300));
  CHECK(got["std_x"].get<double>() ==
        Approx(want["std_x"].get<double>()).epsilon(1e-9).margin(1e-12));
}

}  // namespace

TEST_CASE("run-length samples: exact statistics of the expanded list", "[perf][stats]") {
  SECTION("empty reports zeros like the vector version") {
    RunLengthSamples s;
    nlohmann::ordered_json got;
    add_latency_summary(got, "x", s);
    for (const char* key : {"mean_x", "median_x", "std_x", "p90_x", "p95_x", "p99_x"})
      CHECK(got[key].get<double>() == 0.0);
  }
  SECTION("decode-like runs, with compaction forced many times") {
    // 300,000 runs of 1..64 equal gaps (a decode batch), gaps from a few hundred distinct
    // values: far more pairs than the first compaction point, so sort + merge runs repeatedly.
    std::mt19937_64 rng(7);
    RunLengthSamples s(1 << 12);
    std::vector<double> expanded;
    for (int i = 0; i < 300'000; ++i) {
      const int64_t gap_ns = 5'000'000 + static_cast<int64_t>(rng() % 400) * 12'345;
      const uint64_t n = 1 + rng() % 64;
      if (i % 2)
        s.add(Time{gap_ns}, n);
      else
        for (uint64_t k = 0; k < n; ++k) s.add(Time{gap_ns});
      expanded.insert(expanded.end(), n, Time{gap_ns}.to_ms());
    }
    CHECK(s.stored_runs() <= 2 * 400 + (1 << 12));  // bounded by distinct values, not samples
    check_against_expanded(s, expanded);
  }
  SECTION("every value distinct, and merge of two stores") {
    std::mt19937_64 rng(11);
    RunLengthSamples a, b;
    std::vector<double> expanded;
    for (int i = 0; i < 1001; ++i) {
      const int64_t v = static_cast<int64_t>(rng() % 1'000'000'000);
      (i % 3 ? a : b).add(Time{v});
      expanded.push_back(Time{v}.to_ms());
    }
    a.merge(b);
    check_against_expanded(a, expanded);
  }
  SECTION("closed-form step series, expanded only when asked") {
    // Series as a decode stretch reports them: a first step, then d0 + slope * j seconds
    // rounded to the nanosecond; small and large gaps (counted and selected buckets), shared
    // by 1..256 requests, mixed with plain values.
    std::mt19937_64 rng(13);
    RunLengthSamples s;
    std::vector<double> expanded;
    for (int i = 0; i < 2'000; ++i) {
      StepSeries steps;
      const double scale = i % 3 == 0 ? 0.4 : 0.02;  // some gaps above 134 ms
      steps.first_ns = 1 + static_cast<int64_t>(rng() % 50'000'000);
      steps.d0_s = scale * static_cast<double>(rng() % 1'000'000) / 1e6 + 1e-4;
      steps.slope_s = static_cast<double>(rng() % 20'000) * 1e-9;
      steps.steps = 1 + static_cast<int64_t>(rng() % 300);
      const uint64_t count = 1 + rng() % 256;
      s.add_steps(steps, count);
      for (int64_t j = 0; j < steps.steps; ++j)
        expanded.insert(expanded.end(), count, Time{steps.duration_ns(j)}.to_ms());
      if (i % 7 == 0) {
        s.add(Time{steps.first_ns});
        expanded.push_back(Time{steps.first_ns}.to_ms());
      }
    }
    CHECK(s.stored_runs() < 2'400);  // one entry per series, not per step
    check_against_expanded(s, expanded);
  }
  SECTION("falling series, series down to 1 ns, long ones searched, steep ones summed wide") {
    std::mt19937_64 rng(19);
    RunLengthSamples s;
    std::vector<double> expanded;
    __extension__ using Int128 = __int128;
    Int128 sum_ns = 0;
    for (int i = 0; i < 600; ++i) {
      StepSeries steps;
      steps.first_ns = 1 + static_cast<int64_t>(rng() % 20'000'000);
      steps.d0_s = static_cast<double>(rng() % 20'000) * 1e-6 - (i % 5 == 0 ? 1e-3 : 0);
      // Every third steep: steps x spread^2 past 2^64, so summed in 128 bits.
      steps.slope_s = (static_cast<double>(rng() % 20'000) - 1e4) * (i % 3 == 0 ? 1e-8 : 1e-10);
      steps.steps = 1 + static_cast<int64_t>(rng() % (i % 2 ? 20 : 3'000));
      const uint64_t count = 1 + rng() % 8;
      s.add_steps(steps, count);
      for (int64_t j = 0; j < steps.steps; ++j) {
        expanded.insert(expanded.end(), count, Time{steps.duration_ns(j)}.to_ms());
        sum_ns += static_cast<Int128>(steps.duration_ns(j)) * count;
      }
    }
    check_against_expanded(s, expanded);
    // The mean is the exact integer sum divided once.
    CHECK(s.mean_ms() == static_cast<double>(sum_ns) / static_cast<double>(s.count()) * 1e-6);
  }
  SECTION("small values, each its own bucket, and zero") {
    RunLengthSamples s;
    std::vector<double> expanded;
    for (int64_t v = 0; v < 3'000; v += 1 + v / 97) {
      s.add(Time{v}, static_cast<uint64_t>(1 + v % 5));
      expanded.insert(expanded.end(), static_cast<size_t>(1 + v % 5), Time{v}.to_ms());
    }
    check_against_expanded(s, expanded);
  }
  SECTION("a single value") {
    RunLengthSamples s;
    s.add(Time{1'500'000}, 3);
    check_against_expanded(s, {1.5, 1.5, 1.5});
  }
}

TEST_CASE("a step series converted in one loop equals step by step", "[perf][stats]") {
  // for_each_later skips work later_duration_ns does (the rounding of negative halves, the raise
  // to 1 ns when both ends are above it): rising, falling, crossing zero, halves, a flat series.
  std::mt19937_64 rng(17);
  const auto check = [](const StepSeries& steps) {
    std::vector<int64_t> want, got;
    for (int64_t j = 1; j < steps.steps; ++j) want.push_back(steps.later_duration_ns(j));
    steps.for_each_later(1, steps.steps, [&](int64_t v) { got.push_back(v); });
    CHECK(got == want);
    const int64_t mid = steps.steps / 2;
    got.clear();
    steps.for_each_later(mid, steps.steps, [&](int64_t v) { got.push_back(v); });
    CHECK(std::equal(got.begin(), got.end(), want.begin() + (mid - 1), want.end()));
  };
  for (int i = 0; i < 2'000; ++i) {
    StepSeries steps;
    steps.d0_s = (static_cast<double>(rng() % 2'000'001) - 1e6) * 1e-11;  // +-10 us
    steps.slope_s = (static_cast<double>(rng() % 2'001) - 1e3) * 1e-12 * (i % 2 ? 1 : 1e-3);
    steps.steps = 2 + static_cast<int64_t>(rng() % 5'000);
    check(steps);
  }
  check(StepSeries{5, 2.5e-9, 0, 100});       // a half, every step
  check(StepSeries{5, -2.5e-9, 1e-9, 100});   // from -2.5 ns up, through halves
  check(StepSeries{5, 1e-2, -1e-9, 20'000});  // falling
  check(StepSeries{5, 0.2e-9, 0.1e-9, 3});    // below 1 ns at one end only
}

TEST_CASE("a step series given with its planned sums counts as the series alone", "[perf][stats]") {
  // The sums the replica takes when it plans a stretch stand for the converted durations, and
  // its histogram's buckets are searched rather than counted step by step: every statistic
  // equal. Rising and falling, steep ones past the 64-bit sums, short and long.
  std::mt19937_64 rng(23);
  RunLengthSamples with_sums, without;
  for (int i = 0; i < 500; ++i) {
    StepSeries steps;
    steps.first_ns = 1 + static_cast<int64_t>(rng() % 20'000'000);
    steps.d0_s = static_cast<double>(rng() % 20'000) * 1e-6 - (i % 5 == 0 ? 1e-3 : 0);
    steps.slope_s = (static_cast<double>(rng() % 20'000) - 1e4) * (i % 3 == 0 ? 1e-8 : 1e-10);
    steps.steps = 1 + static_cast<int64_t>(rng() % 2'000);
    const uint64_t count = 1 + rng() % 8;
    with_sums.add_steps(steps, count, steps.later_sums(1, steps.steps));
    without.add_steps(steps, count);
  }
  nlohmann::ordered_json a, b;
  add_latency_summary(a, "x", with_sums);
  add_latency_summary(b, "x", without);
  CHECK(a == b);
  CHECK(with_sums.count() == without.count());
}

TEST_CASE("a step series' sums and step search equal its steps summed one by one",
          "[perf][stats]") {
  // later_sums and for_each_later_in_lanes run four steps an instruction where they can
  // (blocks of 256); later_steps_within answers from
  // the unrounded sum in closed form. Both against the durations summed one by one: long
  // series, halves, durations near 1 ns and raised to it, falling ones, past 32-bit lanes.
  std::mt19937_64 rng(29);
  __extension__ using Uint128 = unsigned __int128;
  const auto check = [&](const StepSeries& steps) {
    const int64_t begin = 1 + static_cast<int64_t>(rng() % 4);
    if (begin >= steps.steps) return;
    std::vector<int64_t> durations;
    for (int64_t j = begin; j < steps.steps; ++j) durations.push_back(steps.later_duration_ns(j));
    std::vector<int64_t> in_lanes;
    steps.for_each_later_in_lanes(begin, steps.steps, [&](int64_t v) { in_lanes.push_back(v); });
    CHECK(in_lanes == durations);
    const LaterStepSums sums = steps.later_sums(begin, steps.steps);
    int64_t sum = 0;
    for (int64_t v : durations) sum += v;
    CHECK(sums.steps == std::ssize(durations));
    CHECK(sums.sum_ns == sum);
    CHECK(sums.base_ns == *std::min_element(durations.begin(), durations.end()));
    if (sums.squares_exact) {
      Uint128 excess = 0, excess_sq = 0;
      for (int64_t v : durations) {
        const auto w = static_cast<Uint128>(v - sums.base_ns);
        excess += w;
        excess_sq += w * w;
      }
      CHECK(static_cast<Uint128>(sums.excess_sum_ns) == excess);
      CHECK(static_cast<Uint128>(sums.excess_sq_sum) == excess_sq);
    }
    // From step 1: every total between and at the steps' ends, and the largest k whose
    // durations sum to less than it.
    if (begin != 1) return;
    const int64_t max_steps = steps.steps - 1;
    std::vector<int64_t> ends{0};
    for (int64_t v : durations) ends.push_back(ends.back() + v);
    for (int probe = 0; probe < 40; ++probe) {
      const auto k = static_cast<int64_t>(rng() % static_cast<uint64_t>(max_steps + 1));
      const int64_t offset = static_cast<int64_t>(rng() % 3) - 1;
      const int64_t total = ends[static_cast<size_t>(k)] + (probe % 2 ? offset : 1);
      const auto within = std::lower_bound(ends.begin(), ends.end(), total) - ends.begin() - 1;
      CHECK(steps.later_steps_within(total, max_steps) == std::max<int64_t>(0, within));
    }
  };
  for (int i = 0; i < 3'000; ++i) {
    StepSeries steps;
    steps.first_ns = 1 + static_cast<int64_t>(rng() % 20'000'000);
    const int shape = i % 6;
    if (shape == 0) {  // milliseconds rising by tens of nanoseconds a step, as decode steps do
      steps.d0_s = 5e-3 + static_cast<double>(rng() % 1'000'000) * 1e-8;
      steps.slope_s = static_cast<double>(rng() % 100'000) * 1e-12;
    } else if (shape == 1) {  // falling, and steep
      steps.d0_s = static_cast<double>(rng() % 20'000) * 1e-6;
      steps.slope_s = -static_cast<double>(rng() % 20'000) * 1e-10;
    } else if (shape == 2) {  // a few nanoseconds, through halves and the 1 ns floor
      steps.d0_s = (static_cast<double>(rng() % 2'001) - 1e3) * 1e-11;
      steps.slope_s = static_cast<double>(rng() % 2'001) * 1e-13;
    } else if (shape == 3) {  // around 2^30 ns and past it
      steps.d0_s = 1.07 + static_cast<double>(rng() % 1'000) * 1e-4;
      steps.slope_s = static_cast<double>(rng() % 1'000) * 1e-9;
    } else if (shape == 4) {  // past the 64-bit squares
      steps.d0_s = static_cast<double>(rng() % 20'000) * 1e-6;
      steps.slope_s = static_cast<double>(rng() % 20'000) * 1e-6;
    } else {  // flat
      steps.d0_s = static_cast<double>(rng() % 20'000'000) * 1e-9;
      steps.slope_s = 0;
    }
    steps.steps = 2 + static_cast<int64_t>(rng() % (i % 2 ? 40 : 3'000));
    check(steps);
  }
  check(StepSeries{5, 2.5e-9, 0, 100});         // a half, every step
  check(StepSeries{5, 7.5e-3, 0.5e-9, 1'000});  // halves every other step
  check(StepSeries{5, 1e-2, -1e-9, 20'000});    // falling
}

TEST_CASE("streamed request records equal the in-result array, and nothing is kept",
          "[perf][output]") {
  json doc = load_scenario("seed_q11_four_node.json");
  doc["workload"]["requests"] = 120;
  const RunOutput kept = run_doc(doc);
  std::ostringstream lines;
  RunOptions options;
  options.requests_out = &lines;
  const RunOutput streamed = run_doc(doc, "q11.json", options);
  CHECK_FALSE(streamed.result.contains("requests"));
  CHECK(streamed.result["summary"] == kept.result["summary"]);

  std::istringstream in(lines.str());
  std::string line;
  size_t i = 0;
  double last_done_s = 0;
  while (std::getline(in, line)) {
    const json record = json::parse(line);
    // Completion order: a record is written when its request finishes or is dropped.
    const double done_s = record.value("finish_s", record["arrival_s"].get<double>());
    CHECK(done_s >= last_done_s);
    last_done_s = done_s;
    REQUIRE(i < kept.result["requests"].size());
    CHECK(record == kept.result["requests"][i]);
    ++i;
  }
  CHECK(i == kept.result["requests"].size());

  // /output/requests false: no array and no stream.
  doc["output"]["requests"] = false;
  CHECK_FALSE(run_doc(doc).result.contains("requests"));
}

namespace {

/// The result without its recorded command line, which names the output.
nlohmann::ordered_json without_command_line(nlohmann::ordered_json result) {
  result["servesim"].erase("command_line");
  return result;
}

}  // namespace

TEST_CASE("the result file streams its records first, and its bytes are the whole result's",
          "[perf][output]") {
  const std::string dir = tmp_path("streamed_result");
  std::filesystem::create_directories(dir);
  const std::string out = dir + "/q11.json";
  for (const std::string& stale : {out, out + ".tmp"}) std::filesystem::remove(stale);
  const std::string scenario = source_path("scenarios/seed_q11_four_node.json");
  REQUIRE(run_cli("run " + scenario + " --set /workload/requests=60 -q -o " + out) == 0);
  const std::string text = read_text(out);
  // One JSON document, laid out exactly as writing it whole lays it out, "requests" first.
  const auto parsed = nlohmann::ordered_json::parse(text);
  CHECK(text == result_text(parsed));
  CHECK(parsed.begin().key() == "requests");
  CHECK(parsed["requests"].size() == 60);
  // A record a line: the third line is the first record, whole (then its comma).
  const size_t third_line = text.find('\n', text.find('\n') + 1) + 1;
  CHECK(nlohmann::ordered_json::parse(text.substr(
            third_line, text.find('\n', third_line) - third_line - 1)) == parsed["requests"][0]);
  // The in-memory result of the same run, keys in the same order: the same document.
  json doc = load_scenario("seed_q11_four_node.json");
  doc["workload"]["requests"] = 60;
  const RunOutput kept = run_doc(doc, "seed_q11_four_node.json");
  CHECK(without_command_line(parsed) == without_command_line(kept.result));
  CHECK_FALSE(std::filesystem::exists(out + ".tmp"));

  // Records off: the same result but the records (and the hash of the scenario, which differs
  // by /output/requests).
  const std::string off = dir + "/q11_off.json";
  REQUIRE(run_cli("run " + scenario +
                  " --set /workload/requests=60 --set /output/requests=false -q -o " + off) == 0);
  nlohmann::ordered_json records_off =
      without_command_line(nlohmann::ordered_json::parse(read_text(off)));
  nlohmann::ordered_json records_on = without_command_line(parsed);
  records_on.erase("requests");
  CHECK(records_off["servesim"]["scenario_hash"] != records_on["servesim"]["scenario_hash"]);
  records_off["servesim"].erase("scenario_hash");
  records_on["servesim"].erase("scenario_hash");
  CHECK(records_off == records_on);

  // Standard output: the same bytes but the command line.
  const std::string piped = dir + "/q11_stdout.json";
  const std::string cmd = std::string(SERVESIM_BINARY) + " run " + scenario +
                          " --set /workload/requests=60 -q -o - >" + piped;
  REQUIRE(std::system(cmd.c_str()) == 0);
  CHECK(without_command_line(nlohmann::ordered_json::parse(read_text(piped))) ==
        without_command_line(parsed));

  // A failed run leaves no result: failing while the scenario is read, before any record ...
  std::filesystem::remove(out);
  CHECK(run_cli("run " + scenario + " --set /workload/requests=-1 -q -o " + out) == 2);
  // ... or at a bad trace line, with records already streamed.
  const std::string trace = dir + "/bad_after_300.csv";
  {
    std::ofstream csv(trace);
    csv << "TIMESTAMP,ContextTokens,GeneratedTokens\n";
    for (int i = 0; i < 300; ++i)
      csv << fmt::format("2023-11-16 18:{:02}:{:02}.0000000,{},{}\n", i / 60, i % 60, 50 + i, 20);
    csv << "2023-11-16 18:59:59.0000000,12,not_a_number\n";
  }
  const std::string bad = scenario +
                          " --set '/workload={\"kind\":\"trace\",\"format\":\"azure_csv\"," +
                          "\"path\":\"" + trace + "\"}'";
  std::string err;
  CHECK(run_cli("run " + bad + " -q -o " + out, &err) == 2);
  CHECK(err.find("bad_after_300.csv:302:") != std::string::npos);
  for (const std::string& left : {out, out + ".tmp"}) CHECK_FALSE(std::filesystem::exists(left));
}

TEST_CASE("a result file with records on but no request has an empty array", "[perf][output]") {
  const std::string dir = tmp_path("streamed_result");
  std::filesystem::create_directories(dir);
  const std::string trace = dir + "/header_only.csv";
  std::ofstream(trace) << "TIMESTAMP,ContextTokens,GeneratedTokens\n";
  const std::string out = dir + "/empty.json";
  REQUIRE(run_cli("run " + source_path("scenarios/seed_q11_four_node.json") +
                  " --set '/workload={\"kind\":\"trace\",\"format\":\"azure_csv\",\"path\":\"" +
                  trace + "\"}' -q -o " + out) == 0);
  const std::string text = read_text(out);
  const auto parsed = nlohmann::ordered_json::parse(text);
  CHECK(text == result_text(parsed));
  CHECK(text == parsed.dump(1) + "\n");  // no records: the plain dump
  CHECK(parsed.begin().key() == "requests");
  CHECK(parsed["requests"] == nlohmann::ordered_json::array());
}

TEST_CASE("a record's text is its JSON value as the result lays it out", "[perf][output]") {
  // Every optional field, odd numbers and a reason that is not UTF-8.
  Request r;
  r.id = 18'446'744'073'709'551'615ULL;
  r.spec.arrival = Time{1'234'567'891};
  r.spec.prompt_tokens = 7;
  r.spec.output_tokens = 1;
  r.spec.session_id = 3;
  r.predicted_output_tokens = -1;
  r.generated_tokens = 0;
  r.preemptions = 2;
  r.truncated = true;
  for (int finished = 0; finished < 2; ++finished) {
    r.first_token = finished ? Time{1'234'567'892} : Time::max();
    r.finished = finished ? Time{99'000'000'000'001} : Time::max();
    const std::string reason = finished ? "" : "kv \"full\" \xff\n";
    RecordJson value;
    describe_request(value, r, "dropped", std::string("C\xc3\xa9/0"), reason);
    std::string text;
    RecordText writer(text);
    describe_request(writer, r, "dropped", quoted_json_string("C\xc3\xa9/0"), reason);
    writer.finish();
    // The record's compact dump, on its line of the result.
    CHECK(std::string(RecordText::kRecordIndent) +
              value.json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) ==
          text);
    CHECK(text.find('\n') == std::string::npos);
  }
}

TEST_CASE("zeroed blocks read zero at every size, and free at their own size", "[perf][memory]") {
  // Below 64 KiB a calloc, from there fresh kernel pages: both must read zero, even where the
  // heap has just held other data.
  for (size_t bytes :
       {size_t{1}, size_t{4096}, (size_t{64} << 10) - 8, size_t{64} << 10, size_t{3} << 20}) {
    INFO(bytes);
    auto* dirty = static_cast<unsigned char*>(std::malloc(bytes));
    REQUIRE(dirty != nullptr);
    std::memset(dirty, 0xab, bytes);
    std::free(dirty);
    auto* block = static_cast<unsigned char*>(allocate_zeroed(bytes));
    REQUIRE(block != nullptr);
    CHECK(std::all_of(block, block + bytes, [](unsigned char c) { return c == 0; }));
    std::memset(block, 0xcd, bytes);  // writable throughout
    free_zeroed(block, bytes);
  }
  // A counts array allocated, counted into, released and counted again starts from zero.
  LazyCounts counts(size_t{1} << 20);
  counts.add(12345, 7);
  CHECK(counts[12345] == 7);
  counts.release();
  CHECK(counts[12345] == 0);
  counts.add(12345, 1);
  CHECK(counts[12345] == 1);
  CHECK(counts[999] == 0);
}

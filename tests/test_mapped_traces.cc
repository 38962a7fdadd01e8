// Traces researchers bring as published (BurstGPT's CSV, any CSV or JSONL through a column
// mapping) and bursty generated arrivals (gamma gaps with a coefficient of variation).

#include <cmath>
#include <string>
#include <vector>

#include "trace_test_support.h"
#include "traces/mapped_trace.h"

namespace servesim {
namespace {

using trace_testing::build;
using trace_testing::build_error;
using trace_testing::run_open;
using trace_testing::tmp_file;

/// The error replaying the workload of JSON `text` ends with, or "no error".
std::string replay_error(const std::string& text) {
  try {
    run_open(*build(text));
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

std::string errors_of(ArrivalStream& stream) {
  try {
    trace_testing::drain(stream);
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

// Rows in BurstGPT's layout (data/BurstGPT_1.csv): a failed request has 0 response tokens.
const std::string kBurstHeader =
    "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n";
const std::string kBurstRows =
    "5,ChatGPT,472,18,490,Conversation log\n"
    "45,ChatGPT,1087,0,1087,Conversation log\n"
    "118.5,GPT-4,417,276,693,API log\n";

TEST_CASE("a BurstGPT CSV replays as published", "[traces][mapped]") {
  const std::string path = tmp_file("burstgpt.csv", kBurstHeader + kBurstRows);
  const auto specs = run_open(*build(R"({"kind": "trace", "format": "burstgpt_csv", "path": ")" +
                                     path + R"(", "rate_scale": 2})"));
  REQUIRE(specs.size() == 3);
  // Relative to the first row, halved by rate_scale 2: 0, 20 s, 56.75 s.
  CHECK(specs[0].arrival == Time::from_s(0));
  CHECK(specs[1].arrival == Time::from_s(20));
  CHECK(specs[2].arrival == Time::from_ns(56'750'000'000));
  CHECK(specs[0].prompt_tokens == 472);
  CHECK(specs[0].output_tokens == 18);
  CHECK(specs[1].output_tokens == 1);  // the failed request: 0 read as 1
  CHECK(specs[2].prompt_tokens == 417);

  // One model's requests: the first kept row is the time origin.
  const auto gpt4 = run_open(*build(R"({"kind": "trace", "format": "burstgpt_csv", "path": ")" +
                                    path + R"(", "keep_rows_where": {"Model": "GPT-4"}})"));
  REQUIRE(gpt4.size() == 1);
  CHECK(gpt4[0].arrival == Time::from_s(0));
  CHECK(gpt4[0].output_tokens == 276);
  CHECK(build_error(R"({"kind": "trace", "format": "burstgpt_csv", "path": ")" + path +
                    R"(", "keep_rows_where": {"Modle": "GPT-4"}})") ==
        path +
            ":1: missing column 'Modle'; header has: Timestamp, Model, Request tokens, Response "
            "tokens, Total tokens, Log Type");

  const std::string bad =
      tmp_file("burstgpt_bad.csv", kBurstHeader + kBurstRows + "110,ChatGPT,12,3,15,API log\n");
  CsvTraceStream stream(bad, burstgpt_columns(), TraceReplay{});
  CHECK(errors_of(stream) == bad + ":5: Timestamp: '110' is earlier than the previous row's time");
}

TEST_CASE("a CSV trace is read through a column mapping", "[traces][mapped]") {
  const std::string path = tmp_file("mapped.csv",
                                    "t_ms,user,in,out,blocks,extra\n"
                                    "1000,alice,40,5,7 8,x\n"
                                    "1250.5,bob,33,6,,y\n"
                                    "1500,alice,60,7,7 8 9,z\n");
  const auto specs = run_open(*build(R"({"kind": "trace", "format": "csv", "path": ")" + path +
                                     R"(", "time_unit": "ms", "prefix_block_tokens": 16,
      "columns": {"arrival": "t_ms", "prompt_tokens": "in", "output_tokens": "out",
                  "session": "user", "prefix_hashes": "blocks"}})"));
  REQUIRE(specs.size() == 3);
  CHECK(specs[1].arrival == Time::from_ns(250'500'000));
  CHECK(specs[2].arrival == Time::from_ns(500'000'000));
  CHECK(specs[0].session_id == 0);
  CHECK(specs[1].session_id == 1);
  CHECK(specs[2].session_id == 0);  // alice again
  CHECK(specs[0].prefix_block_hashes == std::vector<uint64_t>{7, 8});
  CHECK(specs[1].prefix_block_hashes.empty());
  CHECK(specs[2].prefix_block_hashes == std::vector<uint64_t>{7, 8, 9});
  CHECK(specs[2].prefix_block_tokens == 16);
  CHECK(specs[2].prompt_tokens == 60);
  CHECK(specs[2].output_tokens == 7);

  const std::string ms_columns = R"(", "time_unit": "ms",
      "columns": {"arrival": "t_ms", "prompt_tokens": "in", "output_tokens": "out"}})";
  const std::string bad = tmp_file("mapped_bad.csv", "t_ms,in,out\n1,2,3\nsoon,2,3\n");
  CHECK(replay_error(R"({"kind": "trace", "format": "csv", "path": ")" + bad + ms_columns) ==
        bad +
            ":3: t_ms: expected a non-negative number of 0.001 s units, at most 4e+09 s, got "
            "'soon'");
  const std::string neg = tmp_file("mapped_neg.csv", "t_ms,in,out\n1,-2,3\n");
  CHECK(replay_error(R"({"kind": "trace", "format": "csv", "path": ")" + neg + ms_columns) ==
        neg + ":2: in: expected a non-negative integer, got '-2'");
  CHECK(build_error(R"({"kind": "trace", "format": "csv", "path": ")" + neg +
                    R"(", "time_unit": "ms",
      "columns": {"arrival": "t_ms", "prompt_tokens": "input", "output_tokens": "out"}})") ==
        neg + ":1: missing column 'input'; header has: t_ms, in, out");
}

TEST_CASE("a JSONL trace is read through a key mapping", "[traces][mapped]") {
  const std::string path = tmp_file(
      "mapped.jsonl", R"({"ts": "2024-05-01 10:00:00", "p": 10, "o": 2, "conv": "a", "note": 1})"
                      "\n"
                      R"({"ts": "2024-05-01 10:00:01.5", "p": 20, "o": 3, "conv": 7})"
                      "\n");
  const auto specs = run_open(*build(R"({"kind": "trace", "format": "jsonl", "path": ")" + path +
                                     R"(", "time_unit": "datetime",
      "columns": {"arrival": "ts", "prompt_tokens": "p", "output_tokens": "o", "session": "conv"}})"));
  REQUIRE(specs.size() == 2);
  CHECK(specs[1].arrival == Time::from_ns(1'500'000'000));
  CHECK(specs[0].session_id == 0);
  CHECK(specs[1].session_id == 1);
  CHECK(specs[1].prompt_tokens == 20);

  const std::string bad = tmp_file("mapped_bad.jsonl",
                                   "{\"ts\": 1, \"p\": 2, \"o\": 3}\n"
                                   "{\"ts\": 2, \"o\": 3}\n");
  CHECK(replay_error(R"({"kind": "trace", "format": "jsonl", "path": ")" + bad +
                     R"(", "time_unit": "s",
      "columns": {"arrival": "ts", "prompt_tokens": "p", "output_tokens": "o"}})") ==
        bad + ":2: /: missing required key 'p'");
}

TEST_CASE("a mapped trace's scenario keys are checked", "[traces][mapped]") {
  const std::string path = tmp_file("keys.csv", "t,i,o\n0,1,1\n");
  const std::string head = R"({"kind": "trace", "format": "csv", "path": ")" + path + R"(", )";
  CHECK(build_error(
            head + R"("columns": {"arrival": "t", "prompt_tokens": "i", "output_tokens": "o"}})") ==
        "scenario.json: /workload: missing required key 'time_unit'");
  CHECK(
      build_error(
          head +
          R"("time_unit": "h", "columns": {"arrival": "t", "prompt_tokens": "i", "output_tokens": "o"}})")
          .starts_with("scenario.json: /workload/time_unit: "));
  CHECK(
      build_error(
          head +
          R"("time_unit": "s", "columns": {"arrival": "t", "prompt_tokens": "i", "output_tokens": "o", "prefix_hashes": "i"}})") ==
      "scenario.json: /workload/columns/prefix_hashes: needs prefix_block_tokens beside "
      "columns: the tokens each id stands for");
  CHECK(
      build_error(
          head +
          R"("time_unit": "s", "columns": {"arrival": "t", "prompt": "i", "output_tokens": "o"}})")
          .starts_with("scenario.json: /workload/columns"));
}

/// Gaps of a generated stream, in seconds.
std::vector<double> gaps_s(ArrivalStream& stream) {
  std::vector<double> gaps;
  Time last{};
  bool first = true;
  while (auto spec = stream.next()) {
    if (!first) gaps.push_back((spec->arrival - last).to_s());
    last = spec->arrival;
    first = false;
  }
  return gaps;
}

TEST_CASE("gamma arrivals have the asked rate and coefficient of variation", "[workloads]") {
  for (const double cv : {0.5, 1.0, 3.0}) {
    LengthDist fixed;
    fixed.lo_tokens = fixed.hi_tokens = 8;
    GammaStream stream(4.0, cv, 200'000, std::nullopt, LengthSampler(fixed, fixed, 3), 3);
    const std::vector<double> gaps = gaps_s(stream);
    double sum = 0, sum_sq = 0;
    for (double g : gaps) sum += g;
    const double mean = sum / static_cast<double>(gaps.size());
    for (double g : gaps) sum_sq += (g - mean) * (g - mean);
    const double sd = std::sqrt(sum_sq / static_cast<double>(gaps.size()));
    INFO("cv " << cv);
    // 2e5 gaps: the mean's relative standard error is cv / 447 (0.7% at cv 3), the sample
    // cv's about sqrt((2 + 6 cv^2) / (4 n)) (0.9% at cv 3); 4% is over 4 standard errors.
    CHECK(mean == Approx(0.25).epsilon(0.04));
    CHECK(sd / mean == Approx(cv).epsilon(0.04));
  }
  const auto specs = run_open(*build(
      R"({"kind": "gamma", "rate_per_s": 2, "cv": 4, "requests": 50, "input_tokens": 10, "output_tokens": 5})"));
  CHECK(specs.size() == 50);
  CHECK(
      build_error(
          R"({"kind": "gamma", "rate_per_s": 2, "requests": 5, "input_tokens": 1, "output_tokens": 1})") ==
      "scenario.json: /workload: missing required key 'cv'");
  CHECK(
      build_error(
          R"({"kind": "poisson", "rate_per_s": 2, "cv": 2, "requests": 5, "input_tokens": 1, "output_tokens": 1})")
          .starts_with("scenario.json: /workload"));
}

}  // namespace
}  // namespace servesim

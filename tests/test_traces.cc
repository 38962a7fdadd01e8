// Trace readers: Azure CSV and Mooncake JSONL, replayed exactly, and their errors located.
#include <fmt/format.h>

#include <chrono>
#include <random>

#include "trace_test_support.h"

using namespace servesim;
using namespace servesim::trace_testing;

TEST_CASE("azure timestamps parse to exact nanoseconds", "[traces]") {
  CHECK(parse_azure_timestamp_ns("2023-11-16 18:15:46.6805900") == 1700158546680590000);
  CHECK(parse_azure_timestamp_ns("2023-11-16 18:15:46") == 1700158546000000000);
  CHECK(parse_azure_timestamp_ns("2023-11-16 18:15:46.5") == 1700158546500000000);
  CHECK(parse_azure_timestamp_ns("2023-11-16T18:15:46.000000001Z") == 1700158546000000001);
  CHECK(parse_azure_timestamp_ns("2024-05-10 00:00:00.5+01:00") ==
        parse_azure_timestamp_ns("2024-05-09 23:00:00.5"));
  CHECK_FALSE(parse_azure_timestamp_ns("2023-13-16 18:15:46"));
  CHECK_FALSE(parse_azure_timestamp_ns("2023-02-30 18:15:46"));
  CHECK_FALSE(parse_azure_timestamp_ns("2023-11-16 18:15"));
  CHECK_FALSE(parse_azure_timestamp_ns("2023-11-16 18:15:46."));
  CHECK_FALSE(parse_azure_timestamp_ns("2023-11-16 18:15:46.1234567891"));
  CHECK_FALSE(parse_azure_timestamp_ns("2023-11-16 18:15:46 "));
}

TEST_CASE("azure timestamps in the traces' own form parse as the general reader does", "[traces]") {
  // The traces' form ("YYYY-MM-DD HH:MM:SS.f...") is read at fixed places: against the date
  // through std::chrono, over the whole year range, leap days, month ends (which the general
  // reader takes) and fractions of 1 to 9 digits.
  std::mt19937_64 rng(31);
  for (int i = 0; i < 20'000; ++i) {
    const int year = kMinTraceYear + static_cast<int>(rng() % (kMaxTraceYear - kMinTraceYear + 1));
    const auto month = static_cast<unsigned>(1 + rng() % 12);
    const auto day = static_cast<unsigned>(1 + rng() % 31);
    const int hour = static_cast<int>(rng() % 24), minute = static_cast<int>(rng() % 60);
    const int second = static_cast<int>(rng() % 61);
    const int digits = 1 + static_cast<int>(rng() % 9);
    std::string fraction;
    for (int d = 0; d < digits; ++d) fraction += static_cast<char>('0' + rng() % 10);
    const std::string text = fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{}", year, month, day,
                                         hour, minute, second, fraction);
    const std::chrono::year_month_day date{std::chrono::year{year}, std::chrono::month{month},
                                           std::chrono::day{day}};
    if (!date.ok()) {
      CHECK_FALSE(parse_azure_timestamp_ns(text));
      continue;
    }
    int64_t fraction_ns = std::stoll(fraction);
    for (int d = digits; d < 9; ++d) fraction_ns *= 10;
    const int64_t days = std::chrono::sys_days{date}.time_since_epoch().count();
    const int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second;
    CHECK(parse_azure_timestamp_ns(text) == seconds * 1'000'000'000 + fraction_ns);
  }
}

TEST_CASE("the azure conversation trace replays all rows from t = 0", "[traces]") {
  AzureCsvStream stream(kAzureConv, TraceReplay{});
  const auto specs = drain(stream);
  REQUIRE(specs.size() == 19366);
  CHECK(specs[0].arrival == Time{});
  CHECK(specs[0].prompt_tokens == 374);
  CHECK(specs[0].output_tokens == 44);
  // 18:15:50.9951690 - 18:15:46.6805900, exactly.
  CHECK(specs[1].arrival == Time::from_ns(4'314'579'000));
  CHECK(specs[1].prompt_tokens == 396);
  CHECK(specs[1].output_tokens == 109);
  CHECK(non_decreasing(specs));
  CHECK(std::all_of(specs.begin(), specs.end(), [](const RequestSpec& s) {
    return s.prompt_tokens >= 1 && s.output_tokens >= 1 && s.prefix_block_hashes.empty() &&
           s.session_id == -1 && s.client_id == -1;
  }));
}

TEST_CASE("a trace workload resolves paths from the scenario folder and applies options",
          "[traces]") {
  const auto all = build(R"({"kind": "trace", "format": "azure_csv",
      "path": "../../shared/data/traces/azure2023/AzureLLMInferenceTrace_conv.csv"})",
                         1, SERVESIM_SOURCE_DIR "/scenarios");
  const auto specs = run_open(*all);
  CHECK(specs.size() == 19366);
  CHECK(specs[1].arrival == Time::from_ns(4'314'579'000));

  const auto scaled = build(R"({"kind": "trace", "format": "azure_csv", "time_scale": 0.5,
      "start_s": 10, "max_requests": 5, "path": "azure2023/AzureLLMInferenceTrace_conv.csv"})");
  const auto few = run_open(*scaled);
  REQUIRE(few.size() == 5);
  CHECK(few[0].arrival == Time::from_s(10));
  CHECK(few[1].arrival == Time::from_s(10) + Time::from_ns(2'157'289'500));
}

TEST_CASE("the mooncake conversation trace carries its prefix hashes", "[traces]") {
  const auto workload = build(R"({"kind": "trace", "format": "mooncake_jsonl",
                "path": "mooncake/conversation_trace.jsonl"})");
  const auto specs = run_open(*workload);
  REQUIRE(specs.size() == 12031);
  CHECK(specs[0].arrival == Time{});
  CHECK(specs[0].prompt_tokens == 6758);
  CHECK(specs[0].output_tokens == 500);
  CHECK(specs[0].prefix_block_tokens == 512);
  std::vector<uint64_t> first_ids(14);
  for (uint64_t i = 0; i < 14; ++i) first_ids[i] = i;
  CHECK(specs[0].prefix_block_hashes == first_ids);
  CHECK(specs[1].prefix_block_hashes.size() == 15);
  CHECK(specs[1].prefix_block_hashes.front() == 0);  // shares block 0 with the first request
  CHECK(specs[1].prefix_block_hashes[1] == 14);
  CHECK(non_decreasing(specs));
  CHECK(specs.back().arrival > Time::from_s(3000));  // about an hour of ms timestamps
  // Every prompt is covered by its blocks: ceil(prompt / 512) ids.
  CHECK(std::all_of(specs.begin(), specs.end(), [](const RequestSpec& s) {
    return static_cast<int64_t>(s.prefix_block_hashes.size()) == (s.prompt_tokens + 511) / 512;
  }));
}

TEST_CASE("an open-loop workload pulls exactly one arrival ahead", "[traces]") {
  struct CountingStream : ArrivalStream {
    int64_t pulled = 0;
    std::optional<RequestSpec> next() override {
      if (pulled == 1000) return std::nullopt;
      RequestSpec spec;
      spec.arrival = Time::from_ns(pulled / 3);  // ties too
      ++pulled;
      return spec;
    }
  };
  auto owned = std::make_unique<CountingStream>();
  CountingStream& stream = *owned;
  OpenLoopWorkload workload(std::move(owned));
  Simulator sim;
  int64_t submitted = 0;
  int64_t ahead_mismatch = 0;
  workload.start(sim, [&](const RequestSpec&) {
    ++submitted;
    // The one being submitted was pulled; the next one is not yet.
    if (stream.pulled != submitted) ++ahead_mismatch;
  });
  CHECK(stream.pulled == 1);
  sim.run();
  CHECK(submitted == 1000);
  CHECK(ahead_mismatch == 0);
  CHECK(sim.events_processed() == 1000);
}

TEST_CASE("malformed azure rows name the file and line", "[traces]") {
  const std::string header = "TIMESTAMP,ContextTokens,GeneratedTokens\r\n";
  const std::string row1 = "2023-11-16 18:15:46.6805900,374,44\r\n";
  std::string path = tmp_file("bad_int.csv", header + row1 + "2023-11-16 18:15:47.0,abc,3\r\n");
  CHECK(first_error<AzureCsvStream>(path) ==
        path + ":3: ContextTokens: expected a non-negative integer, got 'abc'");
  path = tmp_file("negative.csv", header + row1 + "2023-11-16 18:15:47.0,3,-2\n");
  CHECK(first_error<AzureCsvStream>(path) ==
        path + ":3: GeneratedTokens: expected a non-negative integer, got '-2'");
  path = tmp_file("backwards.csv", header + row1 + "2023-11-16 18:15:46.6805899,3,2\n");
  CHECK(first_error<AzureCsvStream>(path) ==
        path +
            ":3: TIMESTAMP: '2023-11-16 18:15:46.6805899' is earlier than the previous "
            "row's time");
  path = tmp_file("bad_time.csv", header + "16/11/2023 18:15,3,2\n");
  CHECK(first_error<AzureCsvStream>(path) ==
        path +
            ":2: TIMESTAMP: expected a time 'YYYY-MM-DD HH:MM:SS[.fraction]' in years "
            "1970-2200, got "
            "'16/11/2023 18:15'");
  path = tmp_file("fields.csv", header + row1 + "\n" + "2023-11-16 18:15:47.0,3\n");
  CHECK(first_error<AzureCsvStream>(path) == path + ":4: expected 3 comma-separated fields, got 2");
  path = tmp_file("header.csv", "TIMESTAMP,Context,GeneratedTokens\n" + row1);
  CHECK(first_error<AzureCsvStream>(path) ==
        path +
            ":1: missing column 'ContextTokens'; header has: TIMESTAMP, Context, "
            "GeneratedTokens");
  const std::string missing = std::string(SERVESIM_TEST_TMP_DIR) + "/traces/none.csv";
  CHECK(first_error<AzureCsvStream>(missing) == missing + ": cannot open");
}

TEST_CASE("a zero-token output becomes one token", "[traces]") {
  const std::string path =
      tmp_file("zero.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,0,0\n");
  AzureCsvStream stream(path, TraceReplay{});
  const auto specs = drain(stream);
  REQUIRE(specs.size() == 1);
  CHECK(specs[0].prompt_tokens == 1);
  CHECK(specs[0].output_tokens == 1);
}

TEST_CASE("malformed mooncake rows name the file and line", "[traces]") {
  const std::string row1 =
      R"({"timestamp": 5, "input_length": 600, "output_length": 0, "hash_ids": [0, 1]})"
      "\n";
  std::string path = tmp_file("ok.jsonl", row1);
  {
    MooncakeJsonlStream stream(path, TraceReplay{});
    const auto specs = drain(stream);
    REQUIRE(specs.size() == 1);
    CHECK(specs[0].output_tokens == 1);
    CHECK(specs[0].prefix_block_hashes == std::vector<uint64_t>{0, 1});
  }
  path = tmp_file("type.jsonl", row1 + R"({"timestamp": 6, "input_length": "6", )"
                                       R"("output_length": 1, "hash_ids": []})");
  CHECK(first_error<MooncakeJsonlStream>(path) ==
        path + ":2: /input_length: expected an integer, got a string");
  path = tmp_file("key.jsonl", R"({"timestamp": 6, "input_length": 6, "output_length": 1, )"
                               R"("hash_ids": [], "extra": 1})");
  CHECK(first_error<MooncakeJsonlStream>(path) ==
        path +
            ":1: /extra: unknown key; valid here: hash_ids, input_length, output_length, "
            "timestamp");
  path = tmp_file("back.jsonl", row1 + R"({"timestamp": 4, "input_length": 6, )"
                                       R"("output_length": 1, "hash_ids": []})");
  CHECK(first_error<MooncakeJsonlStream>(path) ==
        path + ":2: /timestamp: 4 ms is earlier than the previous row's 5 ms");
  path = tmp_file("syntax.jsonl", row1 + "{\"timestamp\": 6,\n");
  CHECK_THAT(first_error<MooncakeJsonlStream>(path),
             Catch::StartsWith(path + ":2: invalid JSON: "));
  path = tmp_file("hash.jsonl", R"({"timestamp": 6, "input_length": 6, "output_length": 1, )"
                                R"("hash_ids": [1, -2]})");
  CHECK(first_error<MooncakeJsonlStream>(path) == path + ":1: /hash_ids/1: must be >= 0, got -2");
}

TEST_CASE("the other shipped traces parse end to end", "[traces]") {
  AzureCsvStream code(kTraceDir + "/azure2023/AzureLLMInferenceTrace_code.csv", TraceReplay{});
  const auto code_specs = drain(code);
  CHECK(code_specs.size() == 8819);
  CHECK(non_decreasing(code_specs));
  MooncakeJsonlStream synthetic(kTraceDir + "/mooncake/synthetic_trace.jsonl", TraceReplay{});
  const auto synthetic_specs = drain(synthetic);
  CHECK(synthetic_specs.size() == 3993);
  CHECK(non_decreasing(synthetic_specs));
}

TEST_CASE("the line reader: blank lines, CR LF, a last line without its end, the length limit",
          "[traces]") {
  using detail::LineReader;
  const std::string longest(LineReader::kMaxLineBytes, 'x');
  const std::string path =
      tmp_file("lines.txt", "a,b\r\n\n\r\n  c\n" + longest + "\n" + longest + "y\nlast");
  LineReader reader(path);
  CHECK(reader.next_line() == std::optional<std::string_view>("a,b"));
  CHECK(reader.line_number() == 1);
  CHECK(reader.next_line() == std::optional<std::string_view>("  c"));
  CHECK(reader.line_number() == 4);
  CHECK(reader.next_line() == std::optional<std::string_view>(longest));
  CHECK_THROWS_WITH(reader.next_line(), path + ":6: line longer than 1024 KiB");

  LineReader tail(tmp_file("tail.txt", "one\n\ntwo"));
  CHECK(tail.next_line() == std::optional<std::string_view>("one"));
  CHECK(tail.next_line() == std::optional<std::string_view>("two"));
  CHECK(tail.line_number() == 3);
  CHECK_FALSE(tail.next_line());
  CHECK_FALSE(tail.next_line());
  LineReader blank_end(tmp_file("blank_end.txt", "one\r\n\r\n"));
  CHECK(blank_end.next_line() == std::optional<std::string_view>("one"));
  CHECK_FALSE(blank_end.next_line());
}

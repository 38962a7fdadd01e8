#pragma once
// Shared by the workload tests (test_traces.cc, test_workloads.cc): the shared data's traces,
// building a workload from JSON text, and running or draining one.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sim/error.h"
#include "sim/json_reader.h"
#include "sim/simulator.h"
#include "traces/closed_loop.h"
#include "traces/length_dist.h"
#include "traces/open_loop.h"
#include "traces/synthetic_streams.h"
#include "traces/trace_streams.h"
#include "traces/workload.h"

namespace servesim::trace_testing {

inline const std::string kTraceDir =
    std::filesystem::path(SERVESIM_SHARED_DIR "/data/traces").lexically_normal().string();
inline const std::string kAzureConv = kTraceDir + "/azure2023/AzureLLMInferenceTrace_conv.csv";
inline const std::string kMooncakeConv = kTraceDir + "/mooncake/conversation_trace.jsonl";
inline const std::string kShareGpt =
    kTraceDir + "/lengths/sharegpt_8k_filtered_stats_llama2_tokenizer.csv";

/// Builds the workload of {"workload": <text>} as a scenario named scenario.json would.
inline std::unique_ptr<Workload> build(const std::string& text, uint64_t seed = 1,
                                       const std::string& base_dir = kTraceDir) {
  nlohmann::json doc;
  doc["workload"] = nlohmann::json::parse(text);
  JsonObject root = JsonValue::root(doc, "scenario.json").object();
  JsonObject w = root.at("workload").object();
  return make_workload(w, base_dir, seed);
}

/// Runs an open-loop workload to the end and returns what it submitted, checking each
/// request is submitted exactly at its arrival time.
inline std::vector<RequestSpec> run_open(Workload& workload) {
  Simulator sim;
  std::vector<RequestSpec> out;
  int64_t late = 0;
  workload.start(sim, [&](const RequestSpec& spec) {
    if (spec.arrival != sim.now()) ++late;
    out.push_back(spec);
  });
  sim.run();
  CHECK(late == 0);
  return out;
}

inline std::vector<RequestSpec> drain(ArrivalStream& stream) {
  std::vector<RequestSpec> out;
  while (auto spec = stream.next()) out.push_back(std::move(*spec));
  return out;
}

inline bool non_decreasing(const std::vector<RequestSpec>& specs) {
  return std::is_sorted(specs.begin(), specs.end(), [](const RequestSpec& a, const RequestSpec& b) {
    return a.arrival < b.arrival;
  });
}

inline std::string tmp_file(const std::string& name, const std::string& content) {
  const std::filesystem::path dir = std::filesystem::path(SERVESIM_TEST_TMP_DIR) / "traces";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / name).string();
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

template <typename Stream>
std::string first_error(const std::string& path) {
  try {
    Stream stream(path, TraceReplay{});
    drain(stream);
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

inline std::string build_error(const std::string& text) {
  try {
    build(text);
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

inline double mean_of(const std::vector<double>& xs) {
  double sum = 0;
  for (double x : xs) sum += x;
  return sum / static_cast<double>(xs.size());
}

}  // namespace servesim::trace_testing

// A whole small scenario end to end: load, wire, simulate and build the result of the seed's
// Q11 four-node cluster (600 requests), with per-request records off as a benchmark run would.

#include <benchmark/benchmark.h>

#include "run/run.h"
#include "run/scenario_file.h"

namespace {

using namespace servesim;

void BM_ScenarioQ11(benchmark::State& state) {
  const std::string dir = std::string(SERVESIM_SOURCE_DIR) + "/scenarios";
  const nlohmann::json doc = read_json_file(dir + "/seed_q11_four_node.json");
  RunOptions options;
  options.overrides = {"/output/requests=false"};
  uint64_t events = 0;
  for (auto _ : state) {
    const RunOutput out = run_scenario(doc, "seed_q11_four_node.json", dir, options);
    events += out.events;
    benchmark::DoNotOptimize(out.result);
  }
  state.SetItemsProcessed(static_cast<int64_t>(events));  // events/s
}
BENCHMARK(BM_ScenarioQ11)->Unit(benchmark::kMillisecond);

}  // namespace

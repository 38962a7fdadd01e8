// One replica's iteration loop: a single Llama-3.1-8B instance on an H100 with the continuous
// batcher serving range(0) requests that all arrive at t = 0 (~1,150 prompt and ~210 output
// tokens, like the Azure conversation trace). items_per_second counts generated tokens, the unit
// the per-iteration decode loop costs scale with.

#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "models/cluster.h"
#include "models/gpu.h"
#include "models/instance.h"
#include "models/llm.h"
#include "policies/continuous_batcher.h"
#include "sim/rng.h"
#include "sim/simulator.h"

namespace {

using namespace servesim;

struct CountingObserver : InstanceObserver {
  int64_t finished = 0;
  void on_finish(Request&) override { ++finished; }
  void on_drop(Request&, std::string_view) override {}
};

void BM_InstanceServe(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<NodeSpec> nodes(1);
  nodes[0].name = "n";
  const GpuSpec gpu = *find_gpu("H100-SXM");
  nodes[0].gpus.assign(1, gpu);
  nodes[0].pcie = {64e9, 2e-6};
  const Cluster cluster(nodes, LinkSpec{12.5e9, 5e-6});
  InstanceConfig config;
  config.name = "i0";
  config.gpus = {0};
  CostModelConfig cost;
  cost.gpu = gpu;
  cost.model = *find_model("Llama-3.1-8B");
  cost.iteration_overhead_s = 1e-3;
  Rng rng(1, "bench_instance");
  std::vector<RequestSpec> specs(static_cast<size_t>(n));
  int64_t tokens = 0;
  for (auto& s : specs) {
    s.prompt_tokens = rng.uniform_int(200, 2'100);
    s.output_tokens = rng.uniform_int(20, 400);
    tokens += s.output_tokens;
  }
  for (auto _ : state) {
    state.PauseTiming();
    Simulator sim;
    CountingObserver observer;
    Instance instance(0, config, cost, cluster, sim,
                      std::make_unique<ContinuousBatcher>(ContinuousBatcherConfig{}), observer);
    std::vector<Request> requests(specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      requests[i].id = i;
      requests[i].spec = specs[i];
      requests[i].predicted_output_tokens = specs[i].output_tokens;
    }
    state.ResumeTiming();
    for (Request& r : requests) instance.enqueue(&r);
    sim.run();
    if (observer.finished != n) state.SkipWithError("not every request finished");
  }
  state.SetItemsProcessed(state.iterations() * tokens);
}
BENCHMARK(BM_InstanceServe)->Arg(256)->Arg(2048)->Unit(benchmark::kMillisecond);

}  // namespace

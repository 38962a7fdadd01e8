// Cost-model evaluation: price_iteration on the shapes a serving run prices most often. Every
// iteration of every replica calls it once, so its cost bounds events/s from above.

#include <benchmark/benchmark.h>

#include "models/cost_model.h"
#include "models/gpu.h"
#include "models/kernel_fit.h"
#include "models/llm.h"

namespace {

using namespace servesim;

CostModelConfig h100_llama8b() {
  CostModelConfig c;
  c.gpu = *find_gpu("H100-SXM");
  c.fit = find_kernel_fit(c.gpu.name);
  c.model = *find_model("Llama-3.1-8B");
  c.iteration_overhead_s = 1e-3;
  return c;
}

/// range(0) decoding requests of ~1,400 tokens of context each.
void BM_PriceDecode(benchmark::State& state) {
  const CostModelConfig c = h100_llama8b();
  BatchShape shape;
  for (int64_t i = 0; i < state.range(0); ++i) shape.add_decode(1'200 + 17 * i);
  for (auto _ : state) benchmark::DoNotOptimize(price_iteration(c, shape));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PriceDecode)->Arg(1)->Arg(64)->Arg(256);

/// One 8,192-token prefill chunk, alone and riding with 64 decodes (vLLM V1 mixed batch).
void BM_PricePrefill(benchmark::State& state) {
  const CostModelConfig c = h100_llama8b();
  BatchShape shape;
  shape.add_prefill(0, 8'192 - state.range(0), true);
  for (int64_t i = 0; i < state.range(0); ++i) shape.add_decode(1'200 + 17 * i);
  for (auto _ : state) benchmark::DoNotOptimize(price_iteration(c, shape));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PricePrefill)->Arg(0)->Arg(64);

/// Building the shape is part of each iteration too: add_decode per running request.
void BM_BuildDecodeShape(benchmark::State& state) {
  for (auto _ : state) {
    BatchShape shape;
    for (int64_t i = 0; i < state.range(0); ++i) shape.add_decode(1'200 + i);
    benchmark::DoNotOptimize(shape);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_BuildDecodeShape)->Arg(256);

}  // namespace

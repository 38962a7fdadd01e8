// Event-queue throughput: push + pop of events with random times, the simulator's inner loop.

#include <benchmark/benchmark.h>

#include <vector>

#include "sim/event_queue.h"
#include "sim/rng.h"

namespace {

using namespace servesim;

void BM_EventQueuePushPop(benchmark::State& state) {
  const int64_t depth = state.range(0);
  EventQueue q;
  Rng rng(1, "bench");
  std::vector<int64_t> delays(4096);
  for (auto& d : delays) d = rng.uniform_int(1, 1'000'000);
  int64_t now = 0;
  for (int64_t i = 0; i < depth; ++i)
    q.push(Time::from_ns(delays[i % 4096]), Phase::kArrival, nullptr);
  size_t k = 0;
  EventQueue::Callback cb;
  for (auto _ : state) {
    now = q.pop(cb).ns;
    q.push(Time::from_ns(now + delays[k++ & 4095]), Phase::kIterationDone, nullptr);
  }
  state.SetItemsProcessed(state.iterations());  // one push + one pop each
}
BENCHMARK(BM_EventQueuePushPop)->Arg(64)->Arg(1024)->Arg(65536);

}  // namespace

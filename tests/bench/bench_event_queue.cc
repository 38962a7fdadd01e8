// Event-queue throughput: push + pop of events with random times, the simulator's inner loop.
// items_per_second counts push+pop PAIRS (one pop and one push per iteration), so it reads
// directly against the target of 20 M push+pop per second. Depth 64 is what a 64-replica
// run keeps live (one iteration end per replica, the next arrival, the next sample).

#include <benchmark/benchmark.h>

#include <vector>

#include "sim/event_queue.h"
#include "sim/rng.h"
#include "sim/simulator.h"

namespace {

using namespace servesim;

std::vector<int64_t> random_delays_ns() {
  Rng rng(1, "bench");
  std::vector<int64_t> delays(4096);
  for (auto& d : delays) d = rng.uniform_int(1, 1'000'000);
  return delays;
}

/// Bare queue, empty callbacks: the heap alone.
void BM_EventQueuePushPop(benchmark::State& state) {
  const int64_t depth = state.range(0);
  const std::vector<int64_t> delays = random_delays_ns();
  EventQueue q;
  for (int64_t i = 0; i < depth; ++i)
    q.push(Time::from_ns(delays[static_cast<size_t>(i) % 4096]), Phase::kArrival, nullptr);
  size_t k = 0;
  EventQueue::Callback cb;
  for (auto _ : state) {
    const int64_t now = q.pop(cb).ns;
    q.push(Time::from_ns(now + delays[k++ & 4095]), Phase::kIterationDone, nullptr);
  }
  state.SetItemsProcessed(state.iterations());  // push+pop pairs
}
BENCHMARK(BM_EventQueuePushPop)->Arg(64)->Arg(1024)->Arg(65536);

/// Through the Simulator with callbacks like the real ones (a lambda capturing a pointer, which
/// fits std::function's small buffer): each event, when run, schedules its successor.
void BM_SimulatorEventChain(benchmark::State& state) {
  const int64_t depth = state.range(0);
  const std::vector<int64_t> delays = random_delays_ns();
  for (auto _ : state) {
    state.PauseTiming();
    Simulator sim;
    struct Chain {
      Simulator* sim;
      const std::vector<int64_t>* delays;
      size_t k = 0;
      int64_t left = 0;
      void fire() {
        if (--left <= 0) return;
        sim->schedule_in(Time::from_ns((*delays)[k++ & 4095]), Phase::kIterationDone,
                         [this] { fire(); });
      }
    };
    std::vector<Chain> chains(static_cast<size_t>(depth));
    for (size_t i = 0; i < chains.size(); ++i) {
      chains[i] = Chain{&sim, &delays, i * 61, 100'000 / depth};
      sim.schedule_at(Time::from_ns(delays[i % 4096]), Phase::kArrival,
                      [c = &chains[i]] { c->fire(); });
    }
    state.ResumeTiming();
    sim.run();
    state.SetItemsProcessed(state.items_processed() + static_cast<int64_t>(sim.events_processed()));
  }
}
BENCHMARK(BM_SimulatorEventChain)->Arg(64)->Arg(1024);

}  // namespace

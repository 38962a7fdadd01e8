#include <catch2/catch.hpp>
#include <vector>

#include "sim/event_queue.h"
#include "sim/rng.h"
#include "sim/simulator.h"

using namespace servesim;

TEST_CASE("events run in (time, phase, insertion) order", "[sim]") {
  Simulator sim;
  std::vector<int> order;
  sim.schedule_at(Time::from_ns(20), Phase::kArrival, [&] { order.push_back(4); });
  sim.schedule_at(Time::from_ns(10), Phase::kSample, [&] { order.push_back(3); });
  sim.schedule_at(Time::from_ns(10), Phase::kIterationDone, [&] { order.push_back(1); });
  sim.schedule_at(Time::from_ns(10), Phase::kIterationDone, [&] { order.push_back(2); });
  sim.schedule_at(Time::from_ns(10), Phase::kArrival, [&] { order.push_back(0); });
  sim.run();
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(sim.now() == Time::from_ns(20));
  CHECK(sim.events_processed() == 5);
}

TEST_CASE("cancelled events never run and their handles go stale", "[sim]") {
  Simulator sim;
  int ran = 0;
  EventId a = sim.schedule_at(Time::from_ns(5), Phase::kArrival, [&] { ran += 1; });
  EventId b = sim.schedule_at(Time::from_ns(6), Phase::kArrival, [&] { ran += 10; });
  CHECK(sim.cancel(a));
  CHECK_FALSE(sim.cancel(a));  // second cancel is a no-op
  sim.run();
  CHECK(ran == 10);
  CHECK_FALSE(sim.cancel(b));  // already ran
  // The slot of `a` is reused by a new event; the stale handle must not cancel it.
  EventId c = sim.schedule_at(Time::from_ns(7), Phase::kArrival, [&] { ran += 100; });
  CHECK_FALSE(sim.cancel(a));
  CHECK_FALSE(sim.cancel(b));
  (void)c;
  sim.run();
  CHECK(ran == 110);
}

TEST_CASE("events scheduled from callbacks interleave correctly", "[sim]") {
  Simulator sim;
  std::vector<int64_t> times;
  int ticks = 0;
  std::function<void()> tick = [&] {
    times.push_back(sim.now().ns);
    if (++ticks < 4) sim.schedule_in(Time::from_ns(3), Phase::kIterationDone, tick);
  };
  sim.schedule_at(Time::from_ns(1), Phase::kIterationDone, tick);
  sim.schedule_at(Time::from_ns(5), Phase::kArrival, [&] { times.push_back(-5); });
  sim.run();
  CHECK(times == std::vector<int64_t>{1, 4, -5, 7, 10});
}

TEST_CASE("heap order holds for many random events", "[sim]") {
  EventQueue q;
  Rng rng(7, "test");
  std::vector<EventId> ids;
  for (int i = 0; i < 5000; ++i)
    ids.push_back(q.push(Time::from_ns(rng.uniform_int(0, 1000)), Phase::kArrival, [] {}));
  for (size_t i = 0; i < ids.size(); i += 3) q.cancel(ids[i]);
  int64_t last = -1;
  size_t popped = 0;
  EventQueue::Callback cb;
  while (!q.empty()) {
    const Time t = q.pop(cb);
    CHECK(t.ns >= last);
    last = t.ns;
    ++popped;
  }
  CHECK(popped == 5000 - (5000 + 2) / 3);
}

TEST_CASE("rng streams are reproducible and independent by name", "[sim]") {
  Rng a(1, "arrivals"), b(1, "arrivals"), c(1, "lengths");
  for (int i = 0; i < 10; ++i) {
    const uint64_t x = a.next_u64();
    CHECK(x == b.next_u64());
    CHECK(x != c.next_u64());
  }
  Rng e(3, "exp");
  double sum = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) sum += e.exponential(4.0);
  // Mean of Exp(4) is 0.25; the standard error over 2e5 draws is 0.25/sqrt(2e5) = 5.6e-4.
  CHECK(sum / n == Approx(0.25).margin(3e-3));
}

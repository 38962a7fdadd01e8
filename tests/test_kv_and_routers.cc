// KV block accounting, the continuous batcher's preemption, and each router's choice.

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "models/instance.h"
#include "models/prefix_cache.h"
#include "policies/cache_aware_router.h"
#include "policies/continuous_batcher.h"
#include "policies/router.h"
#include "sim/error.h"
#include "sim/rng.h"
#include "sim/simulator.h"

using namespace servesim;

TEST_CASE("KV blocks: ceil accounting, refusal when full, loud failure on misuse", "[kv]") {
  KvBlockPool pool(10, 16);
  int64_t a = 0, b = 0;
  CHECK(pool.blocks_for(1) == 1);
  CHECK(pool.blocks_for(16) == 1);
  CHECK(pool.blocks_for(17) == 2);
  REQUIRE(pool.try_grow(a, 100));  // 7 blocks
  CHECK(a == 7);
  CHECK(pool.used_blocks() == 7);
  CHECK(pool.try_grow(a, 112));  // still 7 blocks
  CHECK(pool.used_blocks() == 7);
  CHECK_FALSE(pool.try_grow(b, 64));  // 4 blocks, only 3 free: refused, nothing changes
  CHECK(b == 0);
  CHECK(pool.used_blocks() == 7);
  REQUIRE(pool.try_grow(b, 48));
  CHECK(pool.free_blocks() == 0);
  CHECK(pool.peak_blocks() == 10);
  pool.release(a);
  CHECK(a == 0);
  CHECK(pool.used_blocks() == 3);
  int64_t bogus = 5;  // more than is in use
  CHECK_THROWS_AS(pool.release(bogus), InvariantError);
}

namespace {

struct NullObserver : InstanceObserver {
  void on_finish(Request&) override {}
  void on_drop(Request&, std::string_view) override {}
};

struct Fixture {
  Simulator sim;
  NullObserver null_observer;
  std::unique_ptr<Cluster> cluster;
  std::vector<std::unique_ptr<Instance>> owned;
  std::vector<Instance*> instances;
  std::vector<std::unique_ptr<Request>> requests;

  /// `n` Llama-3.1-8B replicas, one per H100 of `memory_bytes`, reporting to `observer`.
  explicit Fixture(int n, double memory_bytes = 80e9, InstanceObserver* observer = nullptr,
                   PreemptedKv preempted_kv = PreemptedKv::kNone) {
    std::vector<NodeSpec> nodes(1);
    nodes[0].name = "n";
    GpuSpec g = *find_gpu("H100-SXM");
    g.memory_bytes = memory_bytes;
    nodes[0].gpus.assign(static_cast<size_t>(n), g);
    nodes[0].pcie = {64e9, 2e-6};
    cluster = std::make_unique<Cluster>(nodes, LinkSpec{12.5e9, 5e-6});
    for (int i = 0; i < n; ++i) {
      InstanceConfig config;
      config.name = "i" + std::to_string(i);
      config.gpus = {i};
      config.kv_policy.preempted_kv = preempted_kv;
      CostModelConfig cost;
      cost.gpu = g;
      cost.model = *find_model("Llama-3.1-8B");
      owned.push_back(
          std::make_unique<Instance>(i, config, cost, *cluster, sim,
                                     std::make_unique<ContinuousBatcher>(ContinuousBatcherConfig{}),
                                     observer ? *observer : null_observer));
      instances.push_back(owned.back().get());
    }
  }
  Request* make(int64_t prompt, int64_t output, int64_t predicted) {
    requests.push_back(std::make_unique<Request>());
    Request* r = requests.back().get();
    r->id = requests.size() - 1;
    r->spec.prompt_tokens = prompt;
    r->spec.output_tokens = output;
    r->predicted_output_tokens = predicted;
    return r;
  }
};

}  // namespace

TEST_CASE("round robin cycles; least loaded picks the fewest outstanding tokens", "[router]") {
  Fixture f(3);
  RoundRobinRouter rr;
  Request* probe = f.make(10, 10, 10);
  CHECK(rr.route(*probe, f.instances) == 0);
  CHECK(rr.route(*probe, f.instances) == 1);
  CHECK(rr.route(*probe, f.instances) == 2);
  CHECK(rr.route(*probe, f.instances) == 0);

  // Idle replicas tie: least loaded takes them in turn (ties used to go to i0 every time, which
  // gave the first replica of the Azure scenario 17% more requests than the last).
  LeastLoadedRouter idle;
  CHECK(idle.route(*probe, f.instances) == 0);
  CHECK(idle.route(*probe, f.instances) == 1);
  CHECK(idle.route(*probe, f.instances) == 2);
  CHECK(idle.route(*probe, f.instances) == 0);

  // Loads: i0 = 1000 + 500, i1 = 100 + 50, i2 = 300 + 300 outstanding tokens.
  f.instances[0]->enqueue(f.make(1000, 500, 500));
  f.instances[1]->enqueue(f.make(100, 50, 50));
  f.instances[2]->enqueue(f.make(300, 300, 300));
  CHECK(f.instances[0]->outstanding_tokens() == 1500);
  CHECK(f.instances[1]->outstanding_tokens() == 150);
  LeastLoadedRouter ll;
  CHECK(ll.route(*probe, f.instances) == 1);
  // The router sees predicted output, not the truth: predicting 0 makes i2 look lightest.
  f.instances[1]->enqueue(f.make(500, 10, 10));
  f.instances[2]->enqueue(f.make(10, 5000, 0));
  CHECK(f.instances[2]->outstanding_tokens() == 610);
  CHECK(ll.route(*probe, f.instances) == 2);
}

namespace {

Request* with_prefix(Request* r, std::vector<uint64_t> hashes, int64_t session = -1) {
  r->spec.prefix_block_tokens = 512;
  r->spec.prefix_block_hashes = std::move(hashes);
  r->spec.session_id = session;
  return r;
}

}  // namespace

TEST_CASE("ties go round the replicas, not to the lowest index", "[router]") {
  FairTieBreak ties;
  auto all = [](size_t) { return true; };
  auto same = [](size_t) { return 0; };
  CHECK(ties.pick(3, all, same) == 0);
  CHECK(ties.pick(3, all, same) == 1);
  CHECK(ties.pick(3, all, same) == 2);
  CHECK(ties.pick(3, all, same) == 0);
  // A strictly better candidate wins whatever the rotation; none eligible: -1.
  CHECK(ties.pick(3, all, [](size_t i) { return i == 2 ? -1 : 0; }) == 2);
  CHECK(ties.pick(
            3, [](size_t) { return false; }, same) == -1);
  // kv_aware on idle replicas: all tie, so each gets its turn.
  Fixture f(3);
  KvAwareRouter kv;
  Request* probe = f.make(10, 10, 10);
  CHECK(kv.route(*probe, f.instances) == 0);
  CHECK(kv.route(*probe, f.instances) == 1);
  CHECK(kv.route(*probe, f.instances) == 2);
  // size_class within a pool of idle replicas: the pool's members take turns.
  SizeClassRouter sized({{"short", 1024, {1, 2}}, {"large", 0, {0}}});
  CHECK(sized.route(*probe, f.instances) == 1);
  CHECK(sized.route(*probe, f.instances) == 2);
  CHECK(sized.route(*probe, f.instances) == 1);
}

TEST_CASE("cache-aware router: longest match when balanced, fewest in flight when not",
          "[router]") {
  Fixture f(3);
  CacheAwareRouter router(0.5, BalanceThresholds{32, 1.1});
  // A first turn matches nowhere: the smallest tree (all empty, so the first in turn).
  CHECK(router.route(*with_prefix(f.make(2048, 10, 10), {1, 2, 3, 4}), f.instances) == 0);
  // Its next turn matches 4 of 6 blocks there (0.67 > 0.5): same replica.
  Request* next = with_prefix(f.make(3072, 10, 10), {1, 2, 3, 4, 5, 6});
  CHECK(router.matched_blocks(*next, 0) == 4);
  CHECK(router.matched_blocks(*next, 1) == 0);
  CHECK(router.route(*next, f.instances) == 0);
  // Another conversation shares only the first block (0.25): the smallest tree, replica 1.
  CHECK(router.route(*with_prefix(f.make(2048, 10, 10), {1, 9, 10, 11}), f.instances) == 1);
  // 40 requests in flight on replica 0 against none elsewhere: imbalanced (40 - 0 > 32), so a
  // full match still goes to the fewest in flight.
  for (int i = 0; i < 40; ++i) f.instances[0]->enqueue(f.make(100, 10, 10));
  const int chosen =
      router.route(*with_prefix(f.make(3584, 10, 10), {1, 2, 3, 4, 5, 6, 7}), f.instances);
  CHECK(chosen == 2);
}

TEST_CASE("session affinity keeps a session's turns together until loads diverge", "[router]") {
  Fixture f(3);
  SessionAffinityRouter router(BalanceThresholds{4, 1.1});
  CHECK(router.route(*with_prefix(f.make(100, 10, 10), {}, 7), f.instances) == 0);
  // Replica 0 gets busier, but not by more than 4 requests: session 7 stays.
  f.instances[0]->enqueue(f.make(5000, 500, 500));
  CHECK(router.route(*with_prefix(f.make(200, 10, 10), {}, 7), f.instances) == 0);
  // A new session goes to the least loaded replica (1 and 2 tie; 1 is next in turn).
  CHECK(router.route(*with_prefix(f.make(100, 10, 10), {}, 8), f.instances) == 1);
  // Five more on replica 0: imbalanced (6 - 0 > 4), so session 7 moves, and stays moved.
  for (int i = 0; i < 5; ++i) f.instances[0]->enqueue(f.make(100, 10, 10));
  const int moved = router.route(*with_prefix(f.make(300, 10, 10), {}, 7), f.instances);
  CHECK(moved == 2);
  // Balanced again (6, 2, 3 in flight) with replica 2 the heaviest in tokens: the session
  // stays where it moved, where a load-only router would leave it.
  for (int i = 0; i < 2; ++i) f.instances[1]->enqueue(f.make(100, 10, 10));
  for (int i = 0; i < 3; ++i) f.instances[2]->enqueue(f.make(5000, 500, 500));
  CHECK(router.route(*with_prefix(f.make(400, 10, 10), {}, 7), f.instances) == moved);
  CHECK(router.route(*with_prefix(f.make(400, 10, 10), {}, 9), f.instances) == 1);
}

TEST_CASE("size-class router: class by prompt + predicted output, least loaded in the pool",
          "[router]") {
  Fixture f(4);
  SizeClassRouter router({{"short", 1024, {0, 1}}, {"medium", 4096, {2}}, {"large", 0, {3}}});
  CHECK(router.classify(1024) == 0);
  CHECK(router.classify(1025) == 1);
  CHECK(router.classify(4096) == 1);
  CHECK(router.classify(1'000'000) == 2);
  f.instances[0]->enqueue(f.make(500, 100, 100));
  CHECK(router.route(*f.make(500, 400, 400), f.instances) == 1);     // short, i1 idle
  CHECK(router.route(*f.make(3000, 500, 500), f.instances) == 2);    // medium
  CHECK(router.route(*f.make(3000, 5000, 5000), f.instances) == 3);  // large
  // With the output unknown (predicted 0) a long generation looks short: a misroute.
  CHECK(router.route(*f.make(600, 8000, 0), f.instances) == 1);
}

TEST_CASE("continuous batching preempts the newest request when KV runs out", "[kv]") {
  // One GPU whose memory leaves room for few blocks: 16.5 GB weights + 10% reserve of 20 GB.
  Fixture f(1, 20e9);
  Instance& inst = *f.instances[0];
  const int64_t capacity = inst.kv_capacity_tokens();
  REQUIRE(capacity > 2000);
  REQUIRE(capacity < 20000);
  // Two requests that each fit alone but not together once they grow.
  Request* a = f.make(capacity / 2, capacity, capacity);
  Request* b = f.make(capacity / 2 - 64, capacity, capacity);
  inst.enqueue(a);
  inst.enqueue(b);
  f.sim.run();
  CHECK(a->state == RequestState::kFinished);
  CHECK(b->state == RequestState::kFinished);
  CHECK(b->preemptions >= 1);  // the newer one yields
  CHECK(a->preemptions == 0);
  CHECK(inst.kv_pool().used_blocks() == 0);
  CHECK(inst.kv_pool().peak_blocks() <= inst.kv_pool().total_blocks());
  // Each stops at the replica's maximum context: prompt + generated = capacity.
  CHECK(a->truncated);
  CHECK(a->context_tokens() == capacity);
}

namespace {

/// Checks every instance's running outstanding-token count against a scan of its queues.
struct AccountingObserver : InstanceObserver {
  std::vector<Instance*>* instances = nullptr;
  int64_t checks = 0, mismatches = 0;
  void check() {
    for (Instance* inst : *instances) {
      ++checks;
      if (inst->outstanding_tokens() != inst->outstanding_tokens_scan()) ++mismatches;
    }
  }
  void on_finish(Request&) override { check(); }
  void on_drop(Request&, std::string_view) override {}
  void on_iteration(const Instance&, Time, Time, const IterationCost&) override { check(); }
};

}  // namespace

TEST_CASE("the running outstanding-token count equals a scan of the queues at all times",
          "[router][kv]") {
  // Tight memory (preemptions), predictions that miss in both directions, arrivals landing
  // inside closed-form decode stretches, and checks at arbitrary instants in between. 20 GB
  // leaves room for ~11k tokens of Llama-3.1-8B KV per replica. Preempted requests recompute
  // everything, or resume from what the cache kept of them.
  const PreemptedKv kept = GENERATE(PreemptedKv::kNone, PreemptedKv::kAll);
  AccountingObserver observer;
  Fixture f(2, 20e9, &observer, kept);
  Simulator& sim = f.sim;
  std::vector<Instance*>& instances = f.instances;
  observer.instances = &instances;
  Rng rng(5, "accounting");
  std::vector<std::unique_ptr<Request>> requests;
  LeastLoadedRouter router;
  for (int i = 0; i < 400; ++i) {
    auto r = std::make_unique<Request>();
    r->id = static_cast<uint64_t>(i);
    r->spec.prompt_tokens = rng.uniform_int(16, 3000);
    r->spec.output_tokens = rng.uniform_int(1, 600);
    r->predicted_output_tokens = rng.uniform_int(0, 800);  // wrong either way
    r->spec.arrival = Time::from_s(rng.uniform() * 60.0);
    Request* raw = r.get();
    requests.push_back(std::move(r));
    sim.schedule_at(raw->spec.arrival, Phase::kArrival, [&, raw] {
      observer.check();
      instances[static_cast<size_t>(router.route(*raw, instances))]->enqueue(raw);
      observer.check();
    });
  }
  for (int i = 0; i < 2000; ++i)
    sim.schedule_at(Time::from_s(rng.uniform() * 120.0), Phase::kArrival,
                    [&] { observer.check(); });
  sim.run();
  CHECK(observer.checks > 5000);
  CHECK(observer.mismatches == 0);
  uint64_t preemptions = 0;
  for (Instance* inst : instances) {
    preemptions += inst->preemptions();
    CHECK(inst->outstanding_tokens() == 0);
  }
  CHECK(preemptions > 0);  // the recompute path was exercised
  int64_t reused = 0;
  for (Instance* inst : instances) {
    reused += inst->preempted_kv_reused_tokens();
    CHECK(inst->kv_pool().used_blocks() == inst->cached_prefix_blocks());
  }
  CHECK((reused > 0) == (kept == PreemptedKv::kAll));
}

TEST_CASE("a preempted request resumes from the KV its cache kept, prefilling only the rest",
          "[kv]") {
  // Two prompts that fill all but ~two blocks: once they have grown a little, the newer one
  // is preempted. The older one then needs ~8 blocks more for its 128 tokens, evicting at most
  // that many from the end of the newer one's kept KV; with the rest kept, the newer one
  // prefills again only what was evicted when it comes back.
  int64_t prefilled[2] = {0, 0};
  for (const PreemptedKv kept : {PreemptedKv::kNone, PreemptedKv::kAll}) {
    Fixture f(1, 20e9, nullptr, kept);
    Instance& inst = *f.instances[0];
    const int64_t capacity = inst.kv_capacity_tokens();
    Request* a = f.make(capacity / 2, 128, 128);
    Request* b = f.make(capacity / 2 - 32, 200, 200);
    inst.enqueue(a);
    inst.enqueue(b);
    f.sim.run();
    CHECK(a->state == RequestState::kFinished);
    CHECK(b->state == RequestState::kFinished);
    CHECK(a->preemptions == 0);
    CHECK(b->preemptions == 1);
    CHECK(inst.kv_pool().used_blocks() == inst.cached_prefix_blocks());
    const bool resumes = kept == PreemptedKv::kAll;
    CHECK((inst.preempted_kv_reused_tokens() >= capacity / 2 - 32 - 9 * 16) == resumes);
    prefilled[resumes ? 1 : 0] = inst.prefill_tokens();
  }
  CHECK(prefilled[1] < prefilled[0]);
}

TEST_CASE("a preempted request's own KV is evicted from its end, after older entries", "[kv]") {
  PrefixCache cache;
  CHECK(cache.insert(7, 4));                          // a prompt block's entry, oldest
  const int32_t own_100 = cache.insert_own(100, 10);  // request 100's context
  const int32_t own_101 = cache.insert_own(101, 6);   // request 101's, newest
  CHECK(cache.blocks() == 20);
  CHECK(cache.own_entries() == 2);
  CHECK(cache.own_blocks(own_100, 100) == 10);
  CHECK(cache.own_blocks(own_100, 101) == 0);  // a handle names one request's entry only
  CHECK(cache.evict(2) == 4);                  // the prompt entry goes whole
  CHECK(cache.evict(3) == 3);                  // then request 100's last three blocks
  CHECK(cache.own_blocks(own_100, 100) == 7);
  CHECK(cache.evict(20) == 7);  // then the rest of it, no more than it holds
  CHECK(cache.own_entries() == 1);
  // Its slot is free and taken by the next entry: request 100's stale handle finds nothing.
  const int32_t own_102 = cache.insert_own(102, 5);
  CHECK(own_102 == own_100);
  CHECK(cache.take_own(own_100, 100) == 0);  // nothing left of it
  CHECK(cache.own_blocks(own_102, 102) == 5);
  CHECK(cache.take_own(own_101, 101) == 6);  // request 101 gets its six blocks back
  CHECK(cache.take_own(own_101, 101) == 0);  // once
  CHECK(cache.evict(100) == 5);              // request 102's, the only entry left
  CHECK(cache.blocks() == 0);
  CHECK(cache.own_entries() == 0);
  CHECK(cache.evict(1) == 0);  // nothing evictable
  CHECK(cache.evicted_blocks() == 19);
}

TEST_CASE("the prefix cache evicts in least-recently-used order through pins and reuse", "[kv]") {
  // Against a plain list of keys, through random inserts, pins, unpins, own entries and
  // evictions: the slab's links and free slots must keep exactly the order a list keeps.
  PrefixCache cache;
  std::vector<std::pair<uint64_t, bool>> order;   // evictable entries, oldest first
  std::vector<std::pair<uint64_t, int32_t>> own;  // live own entries: request id, handle
  std::map<uint64_t, int64_t> pins;               // prompt blocks cached, by hash
  std::mt19937_64 rng(7);
  uint64_t next_request = 1000;
  for (int step = 0; step < 20000; ++step) {
    const int op = static_cast<int>(rng() % 5);
    if (op == 0) {
      const uint64_t hash = rng() % 64;
      if (cache.insert(hash, 1)) {
        pins[hash] = 0;
        order.emplace_back(hash, false);
      }
    } else if (op == 1 && !pins.empty()) {
      auto it = std::next(pins.begin(), static_cast<long>(rng() % pins.size()));
      const std::vector<uint64_t> one{it->first};
      if (it->second++ == 0) std::erase(order, std::pair<uint64_t, bool>{it->first, false});
      cache.pin(one, 1);
      if (rng() % 2 == 0) {
        cache.unpin(one, 1);
        if (--it->second == 0) order.emplace_back(it->first, false);
      }
    } else if (op == 2) {
      const uint64_t id = next_request++;
      own.emplace_back(id, cache.insert_own(id, 1));
      order.emplace_back(id, true);
    } else if (op == 3 && !own.empty()) {
      const size_t i = rng() % own.size();
      const bool live = std::find(order.begin(), order.end(),
                                  std::pair<uint64_t, bool>{own[i].first, true}) != order.end();
      CHECK(cache.take_own(own[i].second, own[i].first) == (live ? 1 : 0));
      std::erase(order, std::pair<uint64_t, bool>{own[i].first, true});
      own.erase(own.begin() + static_cast<long>(i));
    } else if (op == 4) {
      const int64_t freed = cache.evict(1);
      REQUIRE(freed == (order.empty() ? 0 : 1));
      if (!order.empty()) {
        // The oldest evictable entry is the one gone.
        const auto [key, is_own] = order.front();
        if (is_own) {
          auto it =
              std::find_if(own.begin(), own.end(), [&](const auto& o) { return o.first == key; });
          REQUIRE(it != own.end());
          CHECK(cache.own_blocks(it->second, key) == 0);
        } else {
          CHECK(cache.match({key}) == 0);
          pins.erase(key);
        }
        order.erase(order.begin());
      }
    }
    REQUIRE(cache.own_entries() ==
            static_cast<size_t>(
                std::count_if(order.begin(), order.end(), [](const auto& e) { return e.second; })));
  }
  CHECK(cache.blocks() == static_cast<int64_t>(pins.size() + cache.own_entries()));
}

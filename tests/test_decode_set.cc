// The decode set's aggregates against the same quantities summed request by request, through
// random joins, leaves and advances; and which replicas keep their decoding requests in it.

#include <catch2/catch.hpp>
#include <deque>
#include <map>

#include "models/decode_set.h"
#include "models/instance.h"
#include "policies/continuous_batcher.h"
#include "policies/static_batcher.h"
#include "sim/rng.h"
#include "sim/simulator.h"

using namespace servesim;

namespace {

/// What a member's counters should be, kept by hand.
struct Expected {
  int64_t computed, generated, predicted, steps_left;
};

int64_t blocks_for(int64_t tokens, int64_t bt) {
  return (tokens + bt - 1) / bt;
}

}  // namespace

TEST_CASE("decode set sums equal per-request sums through joins, leaves and advances",
          "[decode_set]") {
  for (int64_t bt : {1, 16, 7}) {
    DecodeSet set(bt);
    Rng rng(static_cast<uint64_t>(bt), "decode_set");
    std::deque<Request> pool;  // stable addresses
    std::map<Request*, Expected> members;
    int checks = 0;
    for (int op = 0; op < 4'000; ++op) {
      const double dice = rng.uniform();
      if (dice < 0.4 || members.empty()) {  // a prefill completes: join
        // Often a request that left (preempted, its stale finish entry possibly still in the
        // heap) or a freed request's slot reused (reset, as the gateway does) joins again.
        Request* slot = nullptr;
        if (rng.uniform() < 0.5 && !pool.empty()) {
          Request& old =
              pool[static_cast<size_t>(rng.uniform_int(0, static_cast<int64_t>(pool.size()) - 1))];
          if (!DecodeSet::is_member(old)) slot = &old;
        }
        if (slot == nullptr) {
          slot = &pool.emplace_back();
          slot->id = pool.size();
        } else if (rng.uniform() < 0.5) {
          const uint64_t id = slot->id;
          *slot = Request{};
          slot->id = id;
        }
        Request& r = *slot;
        r.in_decode = true;
        r.generated_tokens = rng.uniform_int(1, 50);
        r.computed_tokens = rng.uniform_int(1, 3'000) + r.generated_tokens;
        r.kv_blocks = blocks_for(r.computed_tokens, bt);
        r.predicted_output_tokens = rng.uniform_int(0, 400);  // wrong either way
        const int64_t steps_left = rng.uniform_int(1, 300);
        set.join(r, steps_left, rng.uniform() < 0.8);
        members[&r] = {r.computed_tokens, r.generated_tokens, r.predicted_output_tokens,
                       steps_left};
      } else if (dice < 0.55) {  // a preemption: leave, counters brought up to date
        auto it = members.begin();
        std::advance(it, rng.uniform_int(0, static_cast<int64_t>(members.size()) - 1));
        Request& r = *it->first;
        set.leave(r);
        CHECK_FALSE(DecodeSet::is_member(r));
        CHECK(r.computed_tokens == it->second.computed);
        CHECK(r.generated_tokens == it->second.generated);
        CHECK(r.kv_blocks == blocks_for(it->second.computed, bt));
        members.erase(it);
      } else {  // a stretch of steps, never past the next finish (as the replica plans)
        const int64_t steps = rng.uniform_int(1, set.steps_to_next_finish());
        set.advance(steps, Time::from_ns(op));
        for (auto& [r, e] : members) {
          e.computed += steps;
          e.generated += steps;
          e.steps_left -= steps;
        }
        std::vector<Request*> finished;
        set.take_finished(finished);
        for (Request* r : finished) {
          REQUIRE(members.count(r) == 1);
          CHECK(members[r].steps_left == 0);
          CHECK(r->generated_tokens == members[r].generated);
          members.erase(r);
        }
        for (const auto& [r, e] : members) CHECK(e.steps_left > 0);
      }
      // Every aggregate, now and a few steps ahead, against the sums over members.
      REQUIRE(set.size() == static_cast<int64_t>(members.size()));
      for (int64_t ahead :
           {int64_t{0}, int64_t{1}, std::min<int64_t>(5, set.steps_to_next_finish())}) {
        int64_t blocks = 0, context = 0, context_sq = 0, predicted = 0;
        for (const auto& [r, e] : members) {
          blocks += blocks_for(e.computed + ahead, bt);
          context += e.computed + ahead + 1;
          context_sq += (e.computed + ahead + 1) * (e.computed + ahead + 1);
          predicted += std::max<int64_t>(0, e.predicted - e.generated - ahead);
        }
        CHECK(set.held_blocks(ahead) == blocks);
        CHECK(set.context_tokens_sum(ahead) == context);
        CHECK(set.context_tokens_sq_sum(ahead) == context_sq);
        CHECK(set.predicted_decode_left(ahead) == predicted);
        ++checks;
      }
      int64_t growth = 0, next_finish = std::numeric_limits<int64_t>::max();
      for (const auto& [r, e] : members) {
        growth += blocks_for(e.computed + 1, bt) - blocks_for(e.computed, bt);
        next_finish = std::min(next_finish, e.steps_left);
      }
      CHECK(set.growth_blocks() == growth);
      CHECK(set.steps_to_next_finish() == next_finish);
    }
    CHECK(checks == 3 * 4'000);
  }
}

TEST_CASE("the finish heap sweeps out stale entries once they outnumber the members",
          "[decode_set]") {
  std::deque<Request> pool;
  FinishHeap heap(/*owner=*/3);
  for (int i = 0; i < 1000; ++i) {
    Request& r = pool.emplace_back();
    r.instance = 3;
    r.decode_finish_at = 1000 - i;
    heap.push(r.decode_finish_at, &r);
  }
  // 900 leave early, and one of the 100 left moves to another replica: 99 members remain,
  // the first finishing at step 1 (i = 999).
  for (int i = 0; i < 900; ++i) pool[static_cast<size_t>(i)].decode_finish_at = -1;
  pool[950].instance = 4;  // moved to another replica: stale here too
  heap.drop_stale(99);
  CHECK(heap.size() == 99);
  CHECK(heap.top().at == 1);
  // Below the sweep's threshold stale entries stay, except at the top.
  pool[999].decode_finish_at = -1;  // the top
  pool[998].decode_finish_at = -1;  // the next
  pool[900].decode_finish_at = -1;  // deep in the heap, finishing at 100
  heap.drop_stale(96);
  CHECK(heap.size() == 97);
  CHECK(heap.top().at == 3);
  CHECK(heap.top().request == &pool[997]);
}

TEST_CASE("replicas keep decoding requests in aggregate only where the aggregates hold",
          "[decode_set]") {
  std::vector<NodeSpec> nodes(1);
  nodes[0].name = "n";
  nodes[0].gpus.assign(1, *find_gpu("H100-SXM"));
  const Cluster cluster(nodes, LinkSpec{12.5e9, 5e-6});
  Simulator sim;
  struct : InstanceObserver {
    void on_finish(Request&) override {}
    void on_drop(Request&, std::string_view) override {}
  } observer;
  auto make = [&](InstanceConfig config, std::unique_ptr<Batcher> batcher) {
    config.name = "i";
    config.gpus = {0};
    CostModelConfig cost;
    cost.gpu = *find_gpu("H100-SXM");
    cost.model = *find_model("Llama-3.1-8B");
    return Instance(0, config, cost, cluster, sim, std::move(batcher), observer).uses_decode_set();
  };
  const auto continuous = [] {
    return std::make_unique<ContinuousBatcher>(ContinuousBatcherConfig{});
  };
  CHECK(make(InstanceConfig{}, continuous()));
  InstanceConfig exact;
  exact.closed_form_decode = false;  // --exact-steps: the per-request reference path
  CHECK_FALSE(make(exact, continuous()));
  InstanceConfig cached;
  cached.kv_policy.prefix_caching = true;  // shared blocks: a request's blocks are not its own
  CHECK_FALSE(make(cached, continuous()));
  ContinuousBatcherConfig prefill_first;
  prefill_first.prefill_priority = true;  // decodes sit out prefill iterations
  CHECK_FALSE(make(InstanceConfig{}, std::make_unique<ContinuousBatcher>(prefill_first)));
  CHECK_FALSE(make(InstanceConfig{}, std::make_unique<StaticBatcher>(StaticBatcherConfig{})));
}

#pragma once
/// Request-level (static) batching, as in FasterTransformer or a naive HF `generate` server:
/// wait until `batch_size` requests are queued or the oldest has waited `fill_timeout`, prefill
/// the whole batch, then decode it until every member has finished. Nobody joins a batch in
/// flight, so a request that arrives just after a batch started waits for all of it (seed Q7).

#include <cstdint>

#include "models/batcher.h"

namespace servesim {

struct StaticBatcherConfig {
  int64_t batch_size = 64;
  Time fill_timeout = Time::from_s(10.0);
};

class StaticBatcher final : public Batcher {
 public:
  explicit StaticBatcher(StaticBatcherConfig config) : config_(config) {}
  std::string_view name() const override { return "static"; }
  void plan(BatchContext& ctx, IterationPlan& plan) override;
  Time next_wakeup(BatchContext& ctx) override;
  /// A batch in flight takes no one until it is done.
  bool admits_none_while_decoding(BatchContext& ctx) override { return !ctx.running().empty(); }

 private:
  StaticBatcherConfig config_;
};

}  // namespace servesim

#pragma once
/// Routers for multi-turn and shared-prefix workloads, where where a request lands decides
/// whether its prompt is already in a replica's KV cache:
///  - `cache_aware`: SGLang's cache-aware policy (sgl-model-gateway, src/policies/cache_aware.rs;
///    defaults of CacheAwareConfig in src/policies/mod.rs: cache_threshold 0.5,
///    balance_abs_threshold 32, balance_rel_threshold 1.1). The router keeps, per replica, an
///    approximate tree of the prefix blocks it sent there (LRU, as large as the replica's KV).
///    When the in-flight requests are imbalanced (max - min > abs and max > rel x min) it sends
///    to the replica with the fewest; otherwise to the longest prefix match if the match covers
///    more than cache_threshold of the prompt's blocks, else to the replica with the smallest tree.
///  - `session_affinity`: a session's turns stay on the replica of its first turn (sticky, as
///    consistent-hash routing by a session header does), unless the same imbalance test says
///    to move it; requests without a session go to the least loaded replica.
///  - `kv_aware`: the replica with the lowest KV utilisation.
/// Ties go round the replicas (the one after the last chosen), not to the lowest index.

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "policies/router.h"

namespace servesim {

/// The imbalance test of SGLang's cache-aware router, over in-flight requests per replica.
struct BalanceThresholds {
  double abs_requests = 32;
  double rel = 1.1;
  bool imbalanced(const std::vector<Instance*>& instances) const;
};

class CacheAwareRouter final : public Router {
 public:
  CacheAwareRouter(double cache_threshold, BalanceThresholds balance)
      : cache_threshold_(cache_threshold), balance_(balance) {}
  std::string_view name() const override { return "cache_aware"; }
  int route(const Request& r, const std::vector<Instance*>& instances) override;
  /// Leading blocks of `r` the router believes replica `i` holds (tests).
  int64_t matched_blocks(const Request& r, size_t i) const;

 private:
  /// One replica's approximate tree: prefix block hashes, most recently sent first.
  struct Tree {
    std::list<uint64_t> lru;
    std::unordered_map<uint64_t, std::list<uint64_t>::iterator> where;
    int64_t capacity_blocks = 0;
    void touch(uint64_t hash);
  };
  double cache_threshold_;
  BalanceThresholds balance_;
  std::vector<Tree> trees_;
  FairTieBreak ties_;
};

class SessionAffinityRouter final : public Router {
 public:
  explicit SessionAffinityRouter(BalanceThresholds balance) : balance_(balance) {}
  std::string_view name() const override { return "session_affinity"; }
  int route(const Request& r, const std::vector<Instance*>& instances) override;

 private:
  BalanceThresholds balance_;
  std::unordered_map<int64_t, int> replica_of_session_;
  FairTieBreak ties_;
};

class KvAwareRouter final : public Router {
 public:
  std::string_view name() const override { return "kv_aware"; }
  int route(const Request& r, const std::vector<Instance*>& instances) override;

 private:
  FairTieBreak ties_;
};

/// Registers cache_aware, session_affinity and kv_aware.
void register_cache_aware_routers(RouterRegistry& registry);

}  // namespace servesim

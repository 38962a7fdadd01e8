#include "policies/cache_aware_router.h"

#include <algorithm>

namespace servesim {
namespace {

double in_flight(const Instance& instance) {
  return static_cast<double>(instance.num_waiting() + instance.num_running());
}

BalanceThresholds load_balance(JsonObject& config) {
  BalanceThresholds b;
  if (auto v = config.maybe("balance_abs_threshold")) b.abs_requests = v->nonnegative_double();
  if (auto v = config.maybe("balance_rel_threshold")) b.rel = v->number_in_range(1.0, 1e6);
  return b;
}

}  // namespace

bool BalanceThresholds::imbalanced(const std::vector<Instance*>& instances) const {
  double most = -1, least = -1;
  for (const Instance* i : instances) {
    if (!i->available()) continue;
    const double load = in_flight(*i);
    if (most < 0 || load > most) most = load;
    if (least < 0 || load < least) least = load;
  }
  return most >= 0 && most - least > abs_requests && most > rel * least;
}

void CacheAwareRouter::Tree::touch(uint64_t hash) {
  if (auto it = where.find(hash); it != where.end()) {
    lru.splice(lru.begin(), lru, it->second);
    return;
  }
  lru.push_front(hash);
  where[hash] = lru.begin();
  while (static_cast<int64_t>(lru.size()) > capacity_blocks) {
    where.erase(lru.back());
    lru.pop_back();
  }
}

int64_t CacheAwareRouter::matched_blocks(const Request& r, size_t i) const {
  if (i >= trees_.size()) return 0;
  int64_t matched = 0;
  for (const uint64_t h : r.spec.prefix_block_hashes) {
    if (!trees_[i].where.count(h)) break;
    ++matched;
  }
  return matched;
}

int CacheAwareRouter::route(const Request& r, const std::vector<Instance*>& instances) {
  const size_t n = instances.size();
  if (trees_.size() != n) {
    // Each replica's tree mirrors at most what its KV cache can hold, in the request's blocks.
    trees_.assign(n, Tree{});
    const int64_t block_tokens = std::max<int64_t>(1, r.spec.prefix_block_tokens);
    for (size_t i = 0; i < n; ++i)
      trees_[i].capacity_blocks =
          std::max<int64_t>(1, instances[i]->kv_capacity_tokens() / block_tokens);
  }
  auto up = [&](size_t i) { return instances[i]->available(); };
  int chosen = -1;
  if (balance_.imbalanced(instances)) {
    chosen = ties_.pick(n, up, [&](size_t i) { return in_flight(*instances[i]); });
  } else {
    const auto blocks = static_cast<double>(r.spec.prefix_block_hashes.size());
    int64_t best_match = 0;
    for (size_t i = 0; i < n; ++i)
      if (up(i)) best_match = std::max(best_match, matched_blocks(r, i));
    if (blocks > 0 && static_cast<double>(best_match) / blocks > cache_threshold_) {
      // The longest match; among equal matches the less loaded.
      chosen = ties_.pick(
          n, [&](size_t i) { return up(i) && matched_blocks(r, i) == best_match; },
          [&](size_t i) { return in_flight(*instances[i]); });
    } else {
      chosen = ties_.pick(n, up, [&](size_t i) { return trees_[i].lru.size(); });
    }
  }
  if (chosen >= 0)
    for (const uint64_t h : r.spec.prefix_block_hashes)
      trees_[static_cast<size_t>(chosen)].touch(h);
  return chosen;
}

int SessionAffinityRouter::route(const Request& r, const std::vector<Instance*>& instances) {
  auto up = [&](size_t i) { return instances[i]->available(); };
  auto least_loaded = [&] {
    return ties_.pick(instances.size(), up,
                      [&](size_t i) { return instances[i]->outstanding_tokens(); });
  };
  if (r.spec.session_id < 0) return least_loaded();
  const auto it = replica_of_session_.find(r.spec.session_id);
  if (it != replica_of_session_.end() && up(static_cast<size_t>(it->second)) &&
      !balance_.imbalanced(instances))
    return it->second;
  const int chosen = least_loaded();
  if (chosen >= 0) replica_of_session_[r.spec.session_id] = chosen;
  return chosen;
}

int KvAwareRouter::route(const Request&, const std::vector<Instance*>& instances) {
  auto utilisation = [&](size_t i) {
    const Instance& in = *instances[i];
    const double capacity_blocks = static_cast<double>(in.kv_capacity_tokens()) /
                                   static_cast<double>(in.config().block_tokens);
    // Blocks the prefix cache keeps for reuse are free to take: they do not count as used.
    const auto held = static_cast<double>(in.kv_used_blocks_now() - in.cached_prefix_blocks());
    return std::pair(held / capacity_blocks, in.outstanding_tokens());
  };
  return ties_.pick(
      instances.size(), [&](size_t i) { return instances[i]->available(); }, utilisation);
}

void register_cache_aware_routers(RouterRegistry& registry) {
  registry.add("cache_aware",
               "SGLang's cache-aware policy: longest prefix match when loads are balanced, fewest "
               "in-flight requests when not (keys: cache_threshold, balance_abs_threshold, "
               "balance_rel_threshold)",
               [](JsonObject& config, const std::vector<std::string>&) {
                 double threshold = 0.5;
                 if (auto v = config.maybe("cache_threshold")) threshold = v->fraction();
                 const BalanceThresholds balance = load_balance(config);
                 return std::make_unique<CacheAwareRouter>(threshold, balance);
               });
  registry.add("session_affinity",
               "a session's turns stay on its first turn's replica unless loads are imbalanced "
               "(keys: balance_abs_threshold, balance_rel_threshold)",
               [](JsonObject& config, const std::vector<std::string>&) {
                 return std::make_unique<SessionAffinityRouter>(load_balance(config));
               });
  registry.add("kv_aware", "the replica with the lowest KV utilisation",
               [](JsonObject&, const std::vector<std::string>&) {
                 return std::make_unique<KvAwareRouter>();
               });
}

}  // namespace servesim

#pragma once
/// Routers place each arriving request on a replica, from what a real router could know:
/// queue lengths, outstanding work, KV capacity, the prompt length and a *predicted* output
/// length (the true one only under an oracle predictor).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "models/instance.h"
#include "models/request.h"
#include "sim/json_reader.h"
#include "sim/registry.h"

namespace servesim {

/// Chooses among equal candidates fairly: the first after the last choice, cyclically.
class FairTieBreak {
 public:
  /// The index in [0, n) minimising `key` among those `eligible`, ties broken round-robin; -1
  /// when none is eligible.
  template <typename Eligible, typename Key>
  int pick(size_t n, Eligible eligible, Key key) {
    return pick(n, eligible, key, [](size_t, const auto&) { return false; });
  }
  /// The same, skipping the candidates whose key `cannot_beat(i, best_key)` (cheaper than
  /// reading their key) when a best is held: they could not have replaced it.
  template <typename Eligible, typename Key, typename CannotBeat>
  int pick(size_t n, Eligible eligible, Key key, CannotBeat cannot_beat) {
    int best = -1;
    decltype(key(size_t{0})) best_key{};  // each key read once: a replica's load is not free
    for (size_t step = 1; step <= n; ++step) {
      const size_t i = (last_ + step) % n;
      if (!eligible(i) || (best >= 0 && cannot_beat(i, best_key))) continue;
      auto k = key(i);
      if (best < 0 || k < best_key) {
        best = static_cast<int>(i);
        best_key = std::move(k);
      }
    }
    if (best >= 0) last_ = static_cast<size_t>(best);
    return best;
  }

 private:
  size_t last_ = SIZE_MAX;  ///< so that the first search starts at index 0
};

class Router {
 public:
  virtual ~Router() = default;
  virtual std::string_view name() const = 0;
  /// Index into `instances` (all replicas of the cluster, in scenario order) of an available
  /// replica (Instance::available), or -1 when none is.
  virtual int route(const Request& r, const std::vector<Instance*>& instances) = 0;
};

/// Cycles through the replicas in order, blind to load and size.
class RoundRobinRouter final : public Router {
 public:
  std::string_view name() const override { return "round_robin"; }
  int route(const Request& r, const std::vector<Instance*>& instances) override;

 private:
  size_t next_ = 0;
};

/// The replica with the fewest outstanding tokens (prefill left plus predicted decode left);
/// ties go round the replicas (the first after the last chosen), so idle replicas share the
/// arrivals instead of the lowest index taking them all.
class LeastLoadedRouter final : public Router {
 public:
  std::string_view name() const override { return "least_loaded"; }
  int route(const Request& r, const std::vector<Instance*>& instances) override;

 private:
  FairTieBreak ties_;
};

/// Seed Q11: a request's class (short, medium, large, ...) follows from its prompt plus
/// predicted output length; each class owns a pool of replicas, least loaded within the pool.
struct SizeClass {
  std::string name;
  int64_t max_total_tokens = 0;  ///< inclusive upper bound; the last class is unbounded
  std::vector<int> instances;
};

class SizeClassRouter final : public Router {
 public:
  explicit SizeClassRouter(std::vector<SizeClass> classes) : classes_(std::move(classes)) {}
  std::string_view name() const override { return "size_class"; }
  int route(const Request& r, const std::vector<Instance*>& instances) override;
  /// The class index a request of this predicted total length falls into.
  size_t classify(int64_t predicted_total_tokens) const;
  const std::vector<SizeClass>& classes() const { return classes_; }

 private:
  std::vector<SizeClass> classes_;
  std::vector<int> all_;  ///< every replica: the fallback pool when a class has none up
  /// Per class, and for the fallback pool: equal loads go round the pool, not to its first.
  std::vector<FairTieBreak> ties_;
  FairTieBreak fallback_ties_;
};

using RouterRegistry =
    Registry<Router, JsonObject&, const std::vector<std::string>& /*instance names*/>;
void register_builtin_routers(RouterRegistry& registry);

}  // namespace servesim

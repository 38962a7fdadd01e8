#include "policies/router.h"

#include <algorithm>

#include "policies/cache_aware_router.h"

namespace servesim {
namespace {

/// The least loaded available replica of `pool`, ties broken fairly, or -1 when none is
/// available.
int least_loaded_of(const std::vector<int>& pool, const std::vector<Instance*>& instances,
                    FairTieBreak& ties) {
  const int k = ties.pick(
      pool.size(), [&](size_t i) { return instances[pool[i]]->available(); },
      [&](size_t i) { return instances[pool[i]]->outstanding_tokens(); },
      [&](size_t i, int64_t best) {
        return instances[pool[i]]->outstanding_tokens_floor() >= best;
      });
  return k < 0 ? -1 : pool[static_cast<size_t>(k)];
}

}  // namespace

int RoundRobinRouter::route(const Request&, const std::vector<Instance*>& instances) {
  // A failed replica's turn passes to the next one (the gateway routes only when one is up).
  for (size_t tries = 0; tries < instances.size(); ++tries) {
    const size_t chosen = next_ % instances.size();
    ++next_;
    if (instances[chosen]->available()) return static_cast<int>(chosen);
  }
  return -1;
}

int LeastLoadedRouter::route(const Request&, const std::vector<Instance*>& instances) {
  return ties_.pick(
      instances.size(), [&](size_t i) { return instances[i]->available(); },
      [&](size_t i) { return instances[i]->outstanding_tokens(); },
      [&](size_t i, int64_t best) { return instances[i]->outstanding_tokens_floor() >= best; });
}

size_t SizeClassRouter::classify(int64_t predicted_total_tokens) const {
  for (size_t c = 0; c + 1 < classes_.size(); ++c)
    if (predicted_total_tokens <= classes_[c].max_total_tokens) return c;
  return classes_.size() - 1;
}

int SizeClassRouter::route(const Request& r, const std::vector<Instance*>& instances) {
  const size_t c = classify(r.spec.prompt_tokens + r.predicted_output_tokens);
  if (ties_.size() != classes_.size()) ties_.resize(classes_.size());
  const int chosen = least_loaded_of(classes_[c].instances, instances, ties_[c]);
  if (chosen >= 0) return chosen;
  // Every replica of the class has failed: the least loaded of those up, as an operator's
  // fallback would send it.
  if (all_.size() != instances.size()) {
    all_.resize(instances.size());
    for (size_t i = 0; i < all_.size(); ++i) all_[i] = static_cast<int>(i);
  }
  return least_loaded_of(all_, instances, fallback_ties_);
}

void register_builtin_routers(RouterRegistry& registry) {
  register_cache_aware_routers(registry);
  registry.add("round_robin", "cycle through replicas in scenario order, blind to load and size",
               [](JsonObject&, const std::vector<std::string>&) {
                 return std::make_unique<RoundRobinRouter>();
               });
  registry.add("least_loaded",
               "replica with the fewest outstanding tokens (prefill left + predicted decode left)",
               [](JsonObject&, const std::vector<std::string>&) {
                 return std::make_unique<LeastLoadedRouter>();
               });
  registry.add(
      "size_class",
      "short/medium/large classes by prompt + predicted output tokens, each with its own pool "
      "(keys: classes[{name, max_total_tokens, instances}])",
      [](JsonObject& config, const std::vector<std::string>& names) {
        std::vector<SizeClass> classes;
        const auto list = config.at("classes").nonempty_array();
        int64_t previous_bound = 0;
        for (size_t i = 0; i < list.size(); ++i) {
          JsonObject c = list[i].object();
          SizeClass sc;
          sc.name = c.get_or("name", fmt::format("class{}", i));
          const bool last = i + 1 == list.size();
          if (auto bound = c.maybe("max_total_tokens")) {
            sc.max_total_tokens = bound->positive_int();
            if (sc.max_total_tokens <= previous_bound)
              bound->fail("class bounds must increase from one class to the next");
            previous_bound = sc.max_total_tokens;
          } else if (!last) {
            c.fail("missing required key 'max_total_tokens' (only the last class may omit it)");
          }
          for (const JsonValue& n : c.at("instances").nonempty_array()) {
            const std::string name = n.as_string();
            auto it = std::find(names.begin(), names.end(), name);
            if (it == names.end())
              n.fail(fmt::format("unknown instance '{}'; valid: {}", name, fmt::join(names, ", ")));
            sc.instances.push_back(static_cast<int>(it - names.begin()));
          }
          c.finish();
          classes.push_back(std::move(sc));
        }
        return std::make_unique<SizeClassRouter>(std::move(classes));
      },
      {"classes"});
}

}  // namespace servesim

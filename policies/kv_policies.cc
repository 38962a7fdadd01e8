#include "policies/kv_policies.h"

#include <memory>

#include "models/request.h"

namespace servesim {

void register_builtin_kv_policies(KvPolicyRegistry& registry) {
  registry.add("gpu_only",
               "paged KV in VRAM, recompute preemption when it runs out (keys: prefix_caching)",
               [](JsonObject& config) {
                 auto c = std::make_unique<KvPolicyConfig>();
                 c->mode = KvMode::kGpuOnly;
                 c->prefix_caching = config.get_or("prefix_caching", false);
                 return c;
               },
               {"prefix_caching"});
  registry.add("no_cache",
               "no KV cache: every decode step recomputes projections and attention over the "
               "whole context (seed Q8)",
               [](JsonObject&) {
                 auto c = std::make_unique<KvPolicyConfig>();
                 c->mode = KvMode::kNoCache;
                 return c;
               });
  registry.add(
      "host_offload",
      "VRAM then host DRAM over PCIe: cold KV moves to host when VRAM runs out (keys: fetch = "
      "naive | prefetch | hot_window, hot_window_tokens, host_memory_fraction, prefix_caching)",
      [](JsonObject& config) {
        auto c = std::make_unique<KvPolicyConfig>();
        c->mode = KvMode::kHostOffload;
        c->prefix_caching = config.get_or("prefix_caching", false);
        if (auto f = config.maybe("fetch")) {
          const std::string fetch = f->one_of({"naive", "prefetch", "hot_window"});
          c->fetch = fetch == "naive"      ? OffloadFetch::kNaive
                     : fetch == "prefetch" ? OffloadFetch::kPrefetch
                                           : OffloadFetch::kHotWindow;
        }
        if (auto w = config.maybe("hot_window_tokens"))
          c->hot_window_tokens = w->int_in_range(0, kMaxRequestTokens);
        if (c->fetch == OffloadFetch::kHotWindow && c->hot_window_tokens == 0)
          config.fail("fetch 'hot_window' needs hot_window_tokens > 0");
        if (auto h = config.maybe("host_memory_fraction")) c->host_memory_fraction = h->fraction();
        return c;
      },
      {"prefix_caching", "fetch", "hot_window_tokens", "host_memory_fraction"});
}

}  // namespace servesim

#include "tools/list.h"

#include <fmt/format.h>

#include "policies/batchers.h"
#include "policies/engine.h"
#include "policies/kv_policies.h"
#include "policies/predictor.h"
#include "policies/router.h"

namespace servesim {

std::string describe_policies() {
  std::string out;
  RouterRegistry routers("router");
  register_builtin_routers(routers);
  BatcherRegistry batchers("batcher");
  register_builtin_batchers(batchers);
  PredictorRegistry predictors("output-length predictor");
  register_builtin_predictors(predictors);
  auto section = [&](const auto& registry, std::string_view pointer) {
    const std::string kind(registry.kind());
    const std::string plural =
        kind.ends_with('y') ? kind.substr(0, kind.size() - 1) + "ies" : kind + "s";
    out += fmt::format("{} ({}):\n", plural, pointer);
    for (const auto& name : registry.names())
      out += fmt::format("  {:<14} {}\n", name, registry.description(name));
  };
  section(routers, "/policies/router/name");
  section(batchers, "/policies/batcher/name");
  section(predictors, "/policies/router/output_length");
  KvPolicyRegistry kv_policies("KV policy");
  register_builtin_kv_policies(kv_policies);
  section(kv_policies, "/policies/kv/name");
  out += "engines (/engine):\n";
  for (const auto& e : engine_presets())
    out +=
        fmt::format("  {:<14} {:.2f} ms per-iteration overhead, {:.0f} ms frontend latency; {}\n",
                    e.name, e.iteration_overhead_s * 1e3, e.frontend_latency_s * 1e3, e.source);
  return out;
}

}  // namespace servesim

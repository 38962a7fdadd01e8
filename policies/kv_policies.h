#pragma once
/// The KV policy registry (/policies/kv/name): where a replica keeps KV and what it does when
/// VRAM runs out. The product is the policy's settings; the replica (models/instance.h) acts
/// on them.

#include "models/kv_cache.h"
#include "sim/json_reader.h"
#include "sim/registry.h"

namespace servesim {

using KvPolicyRegistry = Registry<KvPolicyConfig, JsonObject&>;
void register_builtin_kv_policies(KvPolicyRegistry& registry);

}  // namespace servesim

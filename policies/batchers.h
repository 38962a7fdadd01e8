#pragma once
/// The batcher registry: each replica gets its own batcher built from /policies/batcher.

#include "models/batcher.h"
#include "sim/json_reader.h"
#include "sim/registry.h"

namespace servesim {

using BatcherRegistry = Registry<Batcher, JsonObject&>;
void register_builtin_batchers(BatcherRegistry& registry);

}  // namespace servesim

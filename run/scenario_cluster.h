#pragma once
/// The parts of a scenario with a structure of their own: the model, the cluster and the
/// replicas placed on it (run/scenario_cluster.cc). Used by run/scenario.cc only.

#include <memory>
#include <string>
#include <vector>

#include "models/cluster.h"
#include "models/cost_model.h"
#include "models/instance.h"
#include "models/kernel_db.h"
#include "models/llm.h"
#include "policies/engine.h"
#include "sim/json_reader.h"

namespace servesim {

DType load_dtype(const JsonValue& v);
/// A catalogue name or an inline shape.
ModelSpec load_model(const JsonValue& v);
std::unique_ptr<Cluster> load_cluster(const JsonValue& v);

struct InstanceLoad {
  InstanceConfig config;
  std::string pointer;
  /// The engine preset as it runs on this replica's GPU (engine_on_gpu).
  EnginePreset engine;
};

/// /instances, placed on `cluster`; block size and memory reserve come from /policies/kv (keys
/// read here) or the engine preset, which sizes the reserve for each replica's TP and PP and
/// the batcher's token budget and sequence cap (engine_kv_reserve). Each replica must hold the
/// model and at least one KV block.
/// /instances is a list, or {"template": {...}, "count": N}: N replicas named NAME0..NAME{N-1}
/// (NAME the template's name, default "replica"), each placed where the template says or, with
/// neither "node" nor "gpus", on the first node with tp x pp free GPUs.
std::vector<InstanceLoad> load_instances(const JsonValue& v, const Cluster& cluster,
                                         const ModelSpec& model, const Precision& precision,
                                         JsonObject& kv_policy, const EnginePreset& engine,
                                         const nlohmann::json& batcher_given);

/// What a replica's cost model is given: its (slowest) GPU type and kernel fit, the model, and
/// the slowest hop of its TP ring and PP chain, found on the cluster graph, and the engine's
/// host-time and CUDA-graph terms.
CostModelConfig cost_model_inputs(const InstanceConfig& config, const Cluster& cluster,
                                  const ModelSpec& model, const Precision& precision,
                                  const KvPolicyConfig& kv_config, const KernelDb* kernel_db,
                                  const EnginePreset& engine);

}  // namespace servesim

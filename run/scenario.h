#pragma once
/// A scenario file, read strictly and turned into plain specs: the model, the cluster, each
/// replica's configuration and cost-model inputs, the policy and workload configurations, and
/// the output options. Nothing is simulated here. Every check of the input happens here, so a
/// bad scenario fails before any simulation with one message naming the file and the JSON
/// pointer; past this point a broken expectation is a bug.
///
/// Policies and workloads are configured by JSON objects that their registries interpret
/// (policies/, traces/). They are validated here by building them once, and kept as their
/// validated JSON so that the wiring (run/run.cc) builds fresh ones for each run.

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "models/cluster.h"
#include "models/cost_model.h"
#include "models/instance.h"
#include "models/kernel_db.h"
#include "models/llm.h"
#include "models/step_traffic.h"
#include "policies/faults.h"
#include "run/kernel_tables.h"

namespace servesim {

/// A policy's or workload's configuration: the JSON object its factory reads, and where in the
/// scenario it came from (for messages).
struct ConfigObject {
  nlohmann::json json = nlohmann::json::object();
  std::string pointer;
};

/// One replica: where it runs and how it is configured, and what its cost model is given.
struct InstanceSpec {
  InstanceConfig config;
  CostModelConfig cost;
  /// The batcher's configuration: the engine preset's defaults with /policies/batcher over them.
  ConfigObject batcher;
};

struct OutputSpec {
  bool record_requests = true;     ///< keep per-request records in the result
  double sample_interval_s = 1.0;  ///< time-series sampling period, simulated seconds
  /// Per-request latency percentiles are exact up to this many samples (and inter-token ones up
  /// to this many stored entries: distinct gaps and decode stretches), then sketched
  /// (sim/latency_values.h).
  uint64_t exact_samples = uint64_t{1} << 20;
};

/// Service-level objectives for goodput and SLO attainment; 0 means none.
struct SloSpec {
  double ttft_ms = 0;
  double tpot_ms = 0;
  double e2el_ms = 0;
  bool any() const { return ttft_ms > 0 || tpot_ms > 0 || e2el_ms > 0; }
};

struct Scenario {
  std::string file;      ///< names the scenario in messages
  std::string base_dir;  ///< relative paths inside the scenario resolve from here
  nlohmann::json doc;    ///< the document after --set overrides (the scenario hash is of this)
  std::string name;
  uint64_t seed = 0;
  ModelSpec model;
  Precision precision;
  std::string engine;
  /// The engine's frontend latency: each request reaches the router this long after it is sent.
  Time frontend_latency{};
  /// Measured kernel tables by GPU type, shared by the replicas' cost models
  /// (InstanceSpec::cost points into them); empty when the fitted forms price kernels.
  std::shared_ptr<const KernelTables> kernel_tables;
  std::shared_ptr<const Cluster> cluster;
  std::vector<InstanceSpec> instances;
  /// /policies/router, whose keys also configure the output-length predictor. It routes
  /// arrivals among the mixed and prefill replicas.
  ConfigObject router;
  /// Some replicas have a prefill or decode role: each request's prefill ends with its KV
  /// flowing to a decode replica that /policies/decode_router chooses.
  bool disaggregated = false;
  ConfigObject decode_router;
  /// /policies/preemption "migrate": a replica short of KV moves a decoding request's KV to
  /// another replica that has room instead of recomputing it ("recompute", the default).
  bool migrate_on_preemption = false;
  /// /policies/iteration_traffic (models/step_traffic.h); faults make "auto" "priced".
  StepTrafficMode iteration_traffic = StepTrafficMode::kAuto;
  ConfigObject workload;
  /// /faults: failures, stragglers and degraded links, in scenario order.
  std::vector<FaultSpec> faults;
  OutputSpec output;
  SloSpec slo;
};

/// What the command line changes in a scenario before it is read.
struct ScenarioOptions {
  std::optional<uint64_t> seed;        ///< overrides /seed
  std::vector<std::string> overrides;  ///< --set POINTER=VALUE, in order
  /// --kernel-db DIR (relative to the working directory); overrides /kernel_db. A GPU folder
  /// or a folder of GPU folders (run/kernel_tables.h).
  std::string kernel_db;
};

/// Reads an already parsed scenario. `file_label` names it in errors and `base_dir` resolves
/// relative paths inside it. Throws InputError naming the file and the JSON pointer.
Scenario parse_scenario(nlohmann::json doc, const std::string& file_label,
                        const std::string& base_dir, const ScenarioOptions& options);

/// The same for the scenario file at `path`.
Scenario parse_scenario_file(const std::string& path, const ScenarioOptions& options);

}  // namespace servesim

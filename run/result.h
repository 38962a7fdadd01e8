#pragma once
/// The result of a run as JSON (names as vLLM's benchmark_serving gives them, so figures compare
/// one to one; scenarios/schema/result.schema.json) and as a summary table for people.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/instance.h"
#include "models/network.h"
#include "policies/faults.h"
#include "policies/gateway.h"
#include "run/metrics.h"
#include "run/scenario.h"

namespace servesim {

/// What the result is built from, at the end of a run.
struct ResultInputs {
  const Scenario& scenario;
  const Gateway& gateway;
  Metrics& metrics;  ///< its latency stores are sorted, and its kept records moved out
  const std::vector<std::unique_ptr<Instance>>& instances;
  bool size_class_routing = false;        ///< report misroutes
  const FaultInjector* faults = nullptr;  ///< report faults and what they did
  /// The links as simulated flows (disaggregated runs): report their KV traffic.
  const ClusterNetwork* network = nullptr;
  Time end;  ///< simulated time at the end of the run
  std::string command_line;
  bool keep_records = true;  ///< put the kept per-request records in the result
};

nlohmann::ordered_json build_result(const ResultInputs& inputs);

/// The summary in the layout of benchmark_serving's printout.
std::string summary_table(const std::string& scenario_name, const nlohmann::ordered_json& summary);

}  // namespace servesim

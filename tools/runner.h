#pragma once
/// Runs one scenario: load strictly, wire cluster, replicas, policies and workload, simulate,
/// check conservation laws, and build the result JSON. Nothing here writes files.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace servesim {

struct RunOptions {
  std::optional<uint64_t> seed;        ///< overrides /seed
  std::vector<std::string> overrides;  ///< --set POINTER=VALUE, in order
  std::string command_line;            ///< recorded in the result's metadata
};

struct RunOutput {
  nlohmann::ordered_json result;
  std::string summary_table;  ///< for people, on the terminal
  uint64_t events = 0;
  double simulated_s = 0;
};

/// Reads the scenario at `path`, applies the options and runs it. Throws InputError (bad
/// input: file, JSON pointer or trace line in the message) or InvariantError (a broken
/// conservation law: a bug).
RunOutput run_scenario_file(const std::string& path, const RunOptions& options);

/// The same for an already parsed document; `file_label` names it in errors and `base_dir`
/// resolves relative paths inside it.
RunOutput run_scenario(nlohmann::json doc, const std::string& file_label,
                       const std::string& base_dir, const RunOptions& options);

/// Names of the registered policies, by kind, with one-line descriptions.
std::string describe_policies();

}  // namespace servesim

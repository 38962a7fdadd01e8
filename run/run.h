#pragma once
/// Runs one scenario: read it into specs (run/scenario.h), wire the cluster, replicas, gateway,
/// policies and workload, simulate, check the conservation laws, and build the result
/// (run/result.h). Nothing here writes files.

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "run/scenario.h"

namespace servesim {

/// A snapshot of a run in progress, for progress bars (tools/progress.h).
struct RunProgress {
  double simulated_s = 0;
  uint64_t arrived = 0, completed = 0, dropped = 0;
};

struct RunOptions {
  std::optional<uint64_t> seed;        ///< overrides /seed
  std::vector<std::string> overrides;  ///< --set POINTER=VALUE, in order
  std::string command_line;            ///< recorded in the result's metadata
  /// When set, each request's record (the fields of the result's "requests" array) is written
  /// here as one JSON line as the request completes or is dropped, in completion order, and the
  /// result holds no "requests" array: memory then does not grow with the trace. The caller owns
  /// the stream (and the file behind it), so the runner still never opens files.
  std::ostream* requests_out = nullptr;
  /// When set (and requests_out is not), and the scenario records requests: called once, as the
  /// simulation starts, for the stream the records of the result's "requests" array go to as
  /// requests complete, laid out as that array's elements (run/request_record.h); the result
  /// then holds no "requests" array, and the caller writes the array's opening before the
  /// records and its closing and the rest of the result after them (tools/output_file.h), so
  /// memory does not grow with the trace and each record is written once.
  std::function<std::ostream&()> result_requests_out;
  /// --kernel-db DIR: price kernels from these measured tables (models/kernel_db.h); overrides
  /// the scenario's /kernel_db. Relative to the working directory.
  std::string kernel_db;
  /// --exact-steps: run every decode step as its own event (the reference for the closed-form
  /// stretches, which must agree with it).
  bool exact_steps = false;
  /// Called at each timeseries sample (every sample_interval_s of simulated time), so it costs
  /// nothing per event; it only reads, so the result is the same with or without it.
  std::function<void(const RunProgress&)> on_progress;
};

struct RunOutput {
  nlohmann::ordered_json result;
  std::string summary_table;  ///< for people, on the terminal
  /// The "requests" array was written to RunOptions::result_requests_out, not into `result`:
  /// this many elements.
  bool requests_streamed = false;
  uint64_t streamed_requests = 0;
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

/// Runs a scenario already read (the options' seed, overrides and kernel tables were applied
/// when it was read and are not looked at again).
RunOutput run_scenario(const Scenario& scenario, const RunOptions& options);

/// The scenario options within the run options.
ScenarioOptions scenario_options(const RunOptions& options);

}  // namespace servesim

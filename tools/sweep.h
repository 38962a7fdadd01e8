#pragma once
/// `servesim sweep`: a grid over --set values run on parallel threads, one result file per
/// point and a combined table. Also the machinery compare and capacity share: running one
/// scenario under extra overrides and a seed, and running many such jobs on threads.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "run/run.h"

namespace CLI {
class App;
}  // namespace CLI

namespace servesim {

class ProgressBar;

/// A scenario file read once, run many times under different overrides and seeds. Each run
/// works on its own copy of the document and builds its own simulator and registries, so runs
/// may proceed on several threads at once.
class ScenarioSource {
 public:
  explicit ScenarioSource(std::string path);
  const std::string& path() const { return path_; }
  /// The document after `overrides` (for reading the current value of a pointer).
  nlohmann::json with_overrides(const std::vector<std::string>& overrides) const;
  /// Runs with `overrides` applied after the scenario's own values and `seed` (nullopt: the
  /// scenario's /seed). The result's command_line is the equivalent `servesim run` command,
  /// so it does not depend on how runs were batched (-j).
  /// `on_progress` is called at each timeseries sample (RunOptions::on_progress); it may throw
  /// to abandon the run.
  RunOutput run(const std::vector<std::string>& overrides, std::optional<uint64_t> seed,
                std::function<void(const RunProgress&)> on_progress = {}) const;
  /// The scenario's /seed after `overrides` (0 when absent).
  uint64_t seed(const std::vector<std::string>& overrides) const;

 private:
  std::string path_;
  std::string base_dir_;
  nlohmann::json doc_;
};

/// `servesim run PATH --set A --set B [--seed N]`, quoted for a POSIX shell where needed.
std::string run_command_line(const std::string& scenario_path,
                             const std::vector<std::string>& overrides,
                             std::optional<uint64_t> seed);

/// Calls job(i) for i in [0, count) on up to `threads` threads (threads <= 0: one per core).
/// `on_done(finished_so_far)` is called under a lock after each job. If jobs throw, all jobs
/// still run and the exception of the lowest index is rethrown, so errors are deterministic.
void parallel_for(size_t count, int threads, const std::function<void(size_t)>& job,
                  const std::function<void(size_t)>& on_done = {});

/// Splits "a,b,[1,2],{\"x\":1}" at top-level commas (not inside brackets, braces or quotes).
std::vector<std::string> split_values(const std::string& text);

struct SweepAxis {
  std::string pointer;
  std::vector<std::string> values;  ///< as typed; parsed like --set values
};

/// Parses `--grid /json/pointer=v1,v2,...`; errors name the argument.
SweepAxis parse_grid(const std::string& text);

struct SweepOptions {
  std::string scenario_path;
  std::vector<SweepAxis> axes;         ///< the first axis varies slowest
  std::vector<std::string> overrides;  ///< --set applied to every point, before the axes
  std::optional<uint64_t> seed;
  int threads = 1;
  std::string output_dir;  ///< point_NNN.json, sweep.json, sweep.csv; created if missing
  std::string command_line;
};

/// Runs every grid point, writes its result file and the combined table (sweep.json, sweep.csv)
/// and returns the table. Identical files whatever `threads` is (sweep.json records the
/// sweep's own command line in its metadata, which is the only part that may differ).
nlohmann::ordered_json run_sweep(const SweepOptions& options, ProgressBar* progress);

/// The combined table as CSV: index, file, one column per axis, then every summary metric.
std::string sweep_csv(const nlohmann::ordered_json& table);

/// A short table for the terminal: axis values and the headline metrics.
std::string sweep_text_table(const nlohmann::ordered_json& table);

/// Writes through a temporary file and renames, so a failed run never leaves a partial file.

/// `servesim sweep` on the command line: registered on the app, run when chosen.
struct SweepCommand {
  explicit SweepCommand(CLI::App& app);
  bool parsed() const;
  int run(const std::string& command_line);

  CLI::App* cmd;
  SweepOptions options;
  std::vector<std::string> grids;
  bool quiet = false;
};

}  // namespace servesim

#pragma once
/// `servesim sweep`: a grid over --set values run on parallel threads, one result file per
/// point and a combined table. Also the machinery compare and capacity share: running one
/// scenario under extra overrides and a seed, and running many such jobs on threads.
/// The sweep is first expanded into a plan of points, so any grouping of the points (threads,
/// shards, job-array tasks) runs the same runs and merges into the same table.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "run/run.h"
#include "tools/shell_quote.h"

namespace servesim {

class ProgressBar;

/// A scenario file read once, run many times under different overrides and seeds. Each run
/// works on its own copy of the document and builds its own simulator and registries, so runs
/// may proceed on several threads at once.
class ScenarioSource {
 public:
  explicit ScenarioSource(std::string path);
  /// A document already read: `label` is the path recorded in results and messages, and the
  /// scenario's relative paths resolve from `base_dir`.
  ScenarioSource(nlohmann::json doc, std::string label, std::string base_dir);
  const std::string& path() const { return path_; }
  const std::string& base_dir() const { return base_dir_; }
  const nlohmann::json& document() const { return doc_; }
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
};

/// A sweep expanded into its points: all that running any subset of them needs.
struct SweepPlan {
  std::string scenario_label;  ///< the scenario path as given; results record it
  std::string base_dir;        ///< absolute, so runs do not depend on the working directory
  nlohmann::json scenario;     ///< the document as read, before any override
  std::vector<SweepAxis> axes;
  std::vector<std::string> overrides;
  std::optional<uint64_t> seed;
  std::string command_line;  ///< `servesim sweep ...` without how it was run (-j, -o, shards)

  size_t point_count() const;
  /// point_NNN.json, zero-padded to the widest index (at least 3 digits).
  std::string point_file(size_t index) const;
  /// Index of point `index`'s value on each axis (mixed radix, the last axis fastest).
  std::vector<size_t> point_choice(size_t index) const;
  /// The --set list of point `index`: the sweep's overrides, then one per axis.
  std::vector<std::string> point_overrides(size_t index) const;
};

/// Expands the grid and checks every point's overrides before anything runs.
SweepPlan plan_sweep(const SweepOptions& options);

/// What the combined table takes from a point's result file.
struct PointRecord {
  nlohmann::ordered_json summary;
  std::string scenario_hash;
  uint64_t seed = 0;
};

/// Runs point `index` and returns its result file's text.
std::string run_sweep_point(const SweepPlan& plan, const ScenarioSource& source, size_t index);

/// Reads a point's result file text; errors name `file`.
PointRecord point_record(const std::string& result_text, const std::string& file);

/// The combined table of every point, in point order.
nlohmann::ordered_json sweep_table(const SweepPlan& plan, std::vector<PointRecord> records);

/// Writes sweep.json and sweep.csv into `dir`.
void write_sweep_table(const std::string& dir, const nlohmann::ordered_json& table);

/// Runs every grid point, writes its result file and the combined table (sweep.json, sweep.csv)
/// and returns the table. The table is built from the result files' text, as `servesim sweep
/// collect` builds it, so the files are identical whatever `threads`, sharding or scheduler.
nlohmann::ordered_json run_sweep(const SweepOptions& options, ProgressBar* progress);

/// The combined table as CSV: index, file, one column per axis, then every summary metric.
std::string sweep_csv(const nlohmann::ordered_json& table);

/// A short table for the terminal: axis values and the headline metrics.
std::string sweep_text_table(const nlohmann::ordered_json& table);

}  // namespace servesim

#pragma once
/// `servesim compare`: CI regression checks of policy metrics. Either two result files (a
/// deterministic simulator gives one number per metric), or one scenario run K times per side
/// with paired seeds, reporting the mean difference with a t-based 95% confidence interval.

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace servesim {

class ProgressBar;

/// Which way a summary metric gets worse.
enum class MetricDirection { kLowerIsBetter, kHigherIsBetter, kNeutral };

/// Latencies (mean/median/p90/p95/p99 of ttft, tpot, itl, e2el, queue), drops, preemptions,
/// truncations and misroutes are worse when higher; completions, throughputs and goodput when
/// lower; counts of input, durations and spreads (std_) are neutral: reported, never a regression.
MetricDirection metric_direction(std::string_view metric);
std::string_view direction_name(MetricDirection d);

/// A tolerance: "5%" is relative to the base value, "20" is absolute in the metric's unit.
struct Tolerance {
  double value = 0;
  bool relative = true;
  /// The largest change in the worse direction that is not a regression, given the base.
  double allowed(double base) const;
  std::string text() const;
};

/// Parses "5%", "0.5%", "20"; `context` names the argument in errors.
Tolerance parse_tolerance(const std::string& text, const std::string& context);

struct CompareOptions {
  std::map<std::string, Tolerance> tolerances;  ///< per metric (--tolerance METRIC=X)
  Tolerance default_tolerance{0, true};         ///< every other directional metric
  std::vector<std::string> metrics;             ///< only these (empty: every summary metric)
};

/// Parses repeated `--tolerance METRIC=X` into `options`.
void add_tolerances(CompareOptions& options, const std::vector<std::string>& args);

/// Compares the `summary` objects of two results. Returns the verdict JSON: `regressed`, and per
/// metric base, new, change, change_fraction, direction, tolerance, allowed_change, regressed.
nlohmann::ordered_json compare_results(const nlohmann::ordered_json& base,
                                       const nlohmann::ordered_json& candidate,
                                       const CompareOptions& options);

struct ReplicationOptions {
  std::string scenario_path;
  std::vector<std::string> common_overrides;  ///< --set, both sides
  std::vector<std::string> base_overrides;    ///< --base-set
  std::vector<std::string> new_overrides;     ///< --new-set
  int replications = 5;
  std::optional<uint64_t> first_seed;  ///< replication r uses first_seed + r (default: /seed)
  int threads = 1;
  std::string command_line;
};

/// Runs K paired replications per side (replication r of both sides uses the same seed, so the
/// workload is the same and only the policy differs), then per metric the mean of the paired
/// differences new - base with its t-based 95% confidence interval. A metric regresses when the
/// whole interval lies beyond the tolerance on the worse side.
nlohmann::ordered_json compare_replications(const ReplicationOptions& run,
                                            const CompareOptions& options, ProgressBar* progress);

/// Two-sided 95% Student t quantile (0.975) for `dof` degrees of freedom.
double t_quantile_975(int dof);

/// The verdict as a table for people.
std::string verdict_table(const nlohmann::ordered_json& verdict);

/// `servesim compare` on the command line: registered on the app, run when chosen. Returns
/// 1 on a regression, 0 otherwise.
struct CompareCommand {
  explicit CompareCommand(CLI::App& app);
  bool parsed() const;
  int run(const std::string& command_line);

  CLI::App* cmd;
  std::vector<std::string> files;
  std::vector<std::string> tolerances;
  std::string default_tolerance = "0%";
  std::vector<std::string> metrics;
  std::string verdict_path;
  ReplicationOptions replication;
  bool quiet = false;
};

}  // namespace servesim

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
  /// --default-tolerance: every compared metric without its own --tolerance. Unset: a metric of
  /// the default set keeps its tolerance there, any other gets 0%.
  std::optional<Tolerance> default_tolerance;
  /// --metric: compare these. The metrics compared are those named by --metric or
  /// --tolerance; with none named, the default set (default_metric_tolerances()), or every
  /// numeric summary metric with `all_metrics`.
  std::vector<std::string> metrics;
  bool all_metrics = false;
};

/// The metrics compared when none is named, with their tolerances: throughputs and mean
/// latencies 5%, p99 latencies 10% (a tail moves more for the same change), drops 0 (any new
/// drop is a regression). Differences between two seeds of one scenario can exceed them; paired
/// replications (compare_replications) separate seed noise from a policy's effect.
const std::vector<std::pair<std::string, Tolerance>>& default_metric_tolerances();

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
/// differences new - base with its t-based 95% confidence interval, and a one-sided sign test
/// over the pairs (how many replications are worse beyond the tolerance, and the chance of at
/// least that many if the two sides were alike). A metric regresses when the whole interval lies
/// beyond the tolerance on the worse side, or when the sign test rejects at 5% (every one of 5
/// pairs worse: p = 1/32), which one outlier cannot mask the way it widens the interval.
nlohmann::ordered_json compare_replications(const ReplicationOptions& run,
                                            const CompareOptions& options, ProgressBar* progress);

/// One metric over K paired replications (base values `bv`, new values `nv`, pair r sharing a
/// seed): means, the mean paired change with its 95% t-interval, pairs worse beyond the
/// tolerance and the sign test's p-value, and the regression verdict described above.
nlohmann::ordered_json paired_verdict(const std::string& metric, const std::vector<double>& bv,
                                      const std::vector<double>& nv, const Tolerance& tolerance);

/// Two-sided 95% Student t quantile (0.975) for `dof` degrees of freedom.
double t_quantile_975(int dof);

/// One-sided sign-test p-value: P(X >= worse) for X ~ Binomial(pairs, 1/2).
double sign_test_p(int worse, int pairs);

/// A number for a table column: up to 6 significant digits, plain (not exponent) form from
/// 1e-3 to 1e9, signed when `sign` is set.
std::string table_number(double v, bool sign = false);

/// The verdict as a table for people.
std::string verdict_table(const nlohmann::ordered_json& verdict);

/// `servesim compare` on the command line: registered on the app, run when chosen. Returns
/// 1 on a regression, 0 otherwise.
struct CompareCommand {
  /// Adds the subcommand; its options are defined when the command line names it.
  explicit CompareCommand(CLI::App& app);
  CompareCommand(const CompareCommand&) = delete;  // the subcommand's callbacks point here
  CompareCommand& operator=(const CompareCommand&) = delete;
  bool parsed() const;
  int run(const std::string& command_line);

  CLI::App* cmd;
  std::vector<std::string> files;
  std::vector<std::string> tolerances;
  std::string default_tolerance;  // empty: not given
  std::vector<std::string> metrics;
  std::string verdict_path;
  ReplicationOptions replication;
  bool quiet = false;
  bool all_metrics = false;

 private:
  void define_options();
};

}  // namespace servesim

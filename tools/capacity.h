#pragma once
/// `servesim capacity`: the highest value of a load parameter (the arrival rate by default), or
/// the lowest value of a capacity parameter (replicas, a trace's time_scale), at which a scenario
/// still meets its SLOs, found by bisection over runs. Assumes that meeting the SLOs is monotone
/// in the parameter. Each run is bounded in wall time and memory, so a search that wanders into
/// a run far larger than intended stops with a message instead of exhausting the machine.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace servesim {

class ProgressBar;

/// One SLO: a summary metric bounded above (`p99_ttft_ms<=2000`) or below
/// (`request_goodput>=1.5`). `METRIC=X` takes the bound from the metric's direction.
struct Slo {
  std::string metric;
  bool upper = true;  ///< metric <= limit (else metric >= limit)
  double limit = 0;
  bool met_by(double value) const { return upper ? value <= limit : value >= limit; }
  std::string text() const;
};

/// Parses `p99_ttft_ms=2000`, `p99_ttft_ms<=2000` or `request_throughput>=3`.
Slo parse_slo(const std::string& text);

/// Which end of the parameter the search is after.
enum class SearchDirection {
  kMaximize,  ///< more is more load (rate_per_s, rate_scale, concurrency): the highest that meets
  kMinimize,  ///< more is less load (time_scale, think time, replicas): the lowest that meets
};

/// The direction a parameter's name implies: minimize for a last key `time_scale`,
/// `think_time_s`, `count` or `replicas`, maximize otherwise.
SearchDirection implied_direction(const std::string& param);

struct CapacityOptions {
  std::string scenario_path;
  std::vector<Slo> slos;
  std::string param = "/workload/rate_per_s";
  std::optional<SearchDirection> direction;  ///< --maximize / --minimize; default: implied
  double max_run_wall_s = 600;               ///< one run longer than this stops the search
  double max_rss_gib = 16;                   ///< the process past this peak RSS stops it too
  std::optional<double> lo, hi;  ///< default: current value / 4 and x 4, widened as needed
  std::string tolerance = "2%";  ///< stop when hi - lo is within this (relative to hi) or absolute
  bool integer = false;          ///< the parameter takes integer values (forced when it is one)
  int max_runs = 40;
  std::vector<std::string> overrides;  ///< --set, every run
  std::optional<uint64_t> seed;        ///< every run uses the same seed (common random numbers)
  std::string command_line;
};

/// Runs the search. The JSON holds the capacity (null when even the lowest value fails), the
/// final bracket, a status (found | above_range | below_range) and every run with its SLO
/// metrics and whether it met them.
nlohmann::ordered_json run_capacity(const CapacityOptions& options, ProgressBar* progress);

/// The runs and the answer as a table for people.
std::string capacity_table(const nlohmann::ordered_json& report);

/// `servesim capacity` on the command line: registered on the app, run when chosen. Returns 1
/// when no value meets the SLOs.
struct CapacityCommand {
  /// Adds the subcommand; its options are defined when the command line names it.
  explicit CapacityCommand(CLI::App& app);
  CapacityCommand(const CapacityCommand&) = delete;  // the subcommand's callbacks point here
  CapacityCommand& operator=(const CapacityCommand&) = delete;
  bool parsed() const;
  int run(const std::string& command_line);

  CLI::App* cmd;
  CapacityOptions options;
  std::vector<std::string> slos;
  std::string output_path;
  bool quiet = false;

 private:
  void define_options();
};

}  // namespace servesim

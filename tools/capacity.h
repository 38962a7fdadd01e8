#pragma once
/// `servesim capacity`: the highest value of a load parameter (the arrival rate by default)
/// at which a scenario still meets its SLOs, found by bisection over runs. Assumes that meeting
/// the SLOs is monotone in the parameter (more load, worse latency), as it is for arrival rate.

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

struct CapacityOptions {
  std::string scenario_path;
  std::vector<Slo> slos;
  std::string param = "/workload/rate_per_s";
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
  explicit CapacityCommand(CLI::App& app);
  bool parsed() const;
  int run(const std::string& command_line);

  CLI::App* cmd;
  CapacityOptions options;
  std::vector<std::string> slos;
  std::string output_path;
  bool quiet = false;
};

}  // namespace servesim

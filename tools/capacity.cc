#include "tools/capacity.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cmath>

#include "run/scenario_file.h"
#include "sim/error.h"
#include "tools/compare.h"
#include "tools/output_file.h"
#include "tools/progress.h"
#include "tools/sweep.h"

namespace servesim {

std::string Slo::text() const {
  return fmt::format("{}{}{:g}", metric, upper ? "<=" : ">=", limit);
}

Slo parse_slo(const std::string& text) {
  Slo slo;
  size_t op = text.find_first_of("<>=");
  if (op == std::string::npos || op == 0)
    throw InputError(fmt::format("--slo {}: expected METRIC<=X, METRIC>=X or METRIC=X", text));
  slo.metric = text.substr(0, op);
  size_t value_at = op + 1;
  if (text[op] == '=') {
    const MetricDirection d = metric_direction(slo.metric);
    if (d == MetricDirection::kNeutral)
      throw InputError(fmt::format("--slo {}: '{}' has no better direction; write {}<=X or {}>=X",
                                   text, slo.metric, slo.metric, slo.metric));
    slo.upper = d == MetricDirection::kLowerIsBetter;
  } else {
    if (op + 1 >= text.size() || text[op + 1] != '=')
      throw InputError(fmt::format("--slo {}: write <= or >=", text));
    slo.upper = text[op] == '<';
    value_at = op + 2;
  }
  const std::string value = text.substr(value_at);
  size_t used = 0;
  try {
    slo.limit = std::stod(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size() || !std::isfinite(slo.limit))
    throw InputError(fmt::format("--slo {}: '{}' is not a number", text, value));
  return slo;
}

nlohmann::ordered_json run_capacity(const CapacityOptions& options, ProgressBar* progress) {
  if (options.slos.empty()) throw InputError("capacity: give at least one --slo METRIC<=X");
  const ScenarioSource source(options.scenario_path);
  const nlohmann::json doc = source.with_overrides(options.overrides);
  nlohmann::json::json_pointer pointer;
  try {
    pointer = nlohmann::json::json_pointer(options.param);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("--param {}: {}", options.param, e.what()));
  }
  if (!doc.contains(pointer) || !doc.at(pointer).is_number())
    throw InputError(fmt::format("{}: {}: --param must name a number in the scenario",
                                 options.scenario_path, options.param));
  const double current = doc.at(pointer).get<double>();
  const bool integer = options.integer || doc.at(pointer).is_number_integer();
  const Tolerance tol = parse_tolerance(options.tolerance, "--tolerance");
  auto snap = [&](double v) { return integer ? std::max(1.0, std::round(v)) : v; };
  double lo = snap(options.lo ? *options.lo : current / 4);
  double hi = snap(options.hi ? *options.hi : current * 4);
  if (!(lo > 0) || !(hi > lo))
    throw InputError(fmt::format("capacity: need 0 < --lo < --hi (have {:g} and {:g})", lo, hi));

  nlohmann::ordered_json report;
  auto& meta = report["servesim_capacity"];
  meta["version"] = SERVESIM_VERSION;
  meta["scenario"] = options.scenario_path;
  meta["command_line"] = options.command_line;
  report["param"] = options.param;
  auto& slos = report["slos"] = nlohmann::ordered_json::array();
  for (const auto& s : options.slos)
    slos.push_back({{"metric", s.metric}, {"bound", s.upper ? "max" : "min"}, {"limit", s.limit}});
  auto& runs = report["runs"] = nlohmann::ordered_json::array();

  auto value_json = [&](double v) {
    return integer ? nlohmann::ordered_json(static_cast<int64_t>(v)) : nlohmann::ordered_json(v);
  };
  auto evaluate = [&](double v) {
    std::vector<std::string> overrides = options.overrides;
    overrides.push_back(fmt::format("{}={}", options.param, value_json(v).dump()));
    RunOutput out = source.run(overrides, options.seed);
    const auto& s = out.result["summary"];
    nlohmann::ordered_json run;
    run["value"] = value_json(v);
    bool meets = true;
    auto& metrics = run["metrics"] = nlohmann::ordered_json::object();
    for (const auto& slo : options.slos) {
      if (!s.contains(slo.metric) || !s[slo.metric].is_number()) {
        std::vector<std::string> names;
        for (const auto& [k, x] : s.items())
          if (x.is_number()) names.push_back(k);
        throw InputError(fmt::format("--slo {}: unknown summary metric '{}'; valid: {}", slo.text(),
                                     slo.metric, fmt::join(names, ", ")));
      }
      metrics[slo.metric] = s[slo.metric];
      meets = meets && slo.met_by(s[slo.metric].get<double>());
    }
    run["meets_slos"] = meets;
    for (const char* key : {"completed", "dropped", "request_throughput"}) run[key] = s[key];
    run["seed"] = out.result["servesim"]["seed"];
    run["scenario_hash"] = out.result["servesim"]["scenario_hash"];
    run["command_line"] = out.result["servesim"]["command_line"];
    runs.push_back(std::move(run));
    if (progress)
      progress->update_steps(static_cast<int64_t>(runs.size()), 0,
                             fmt::format("runs  bracket [{:g}, {:g}]", lo, hi));
    return meets;
  };
  auto budget_left = [&] { return static_cast<int>(runs.size()) < options.max_runs; };
  auto converged = [&] {
    if (integer) return hi - lo <= 1;
    return tol.relative ? hi - lo <= tol.value * hi : hi - lo <= tol.value;
  };

  std::string status = "found";
  bool lo_meets = evaluate(lo);
  // Widen downwards until something meets the SLOs (only when --lo was not given).
  while (!lo_meets && !options.lo && budget_left() && lo > (integer ? 1.0 : 1e-9)) {
    hi = lo;
    lo = integer ? std::max(1.0, std::floor(lo / 2)) : lo / 2;
    lo_meets = evaluate(lo);
  }
  nlohmann::ordered_json capacity = nullptr;
  if (!lo_meets) {
    status = "below_range";
  } else {
    bool hi_meets = evaluate(hi);
    while (hi_meets && !options.hi && budget_left()) {
      lo = hi;
      hi = integer ? hi * 2 : hi * 2;
      hi_meets = evaluate(hi);
    }
    if (hi_meets) {
      lo = hi;
      status = "above_range";
    } else {
      while (!converged() && budget_left()) {
        const double mid = integer ? std::floor((lo + hi) / 2) : (lo + hi) / 2;
        (evaluate(mid) ? lo : hi) = mid;
      }
      if (!converged()) status = "run_limit";
    }
    capacity = value_json(lo);
  }
  report["status"] = status;
  report["capacity"] = capacity;
  report["bracket"] = {
      {"meets", lo_meets ? value_json(lo) : nlohmann::ordered_json(nullptr)},
      {"fails", status == "above_range" ? nlohmann::ordered_json(nullptr)
                                        : value_json(status == "below_range" ? lo : hi)}};
  return report;
}

std::string capacity_table(const nlohmann::ordered_json& report) {
  std::string out = fmt::format(
      "{:>4}  {:>14}", "run",
      report["param"].get<std::string>().substr(report["param"].get<std::string>().rfind('/') + 1));
  for (const auto& s : report["slos"]) out += fmt::format("{:>16}", s["metric"].get<std::string>());
  out += fmt::format("{:>10}{:>10}  {}\n", "completed", "dropped", "meets SLOs");
  size_t i = 0;
  for (const auto& r : report["runs"]) {
    out += fmt::format("{:>4}  {:>14.6g}", ++i, r["value"].get<double>());
    for (const auto& s : report["slos"])
      out += fmt::format("{:>16.2f}", r["metrics"][s["metric"].get<std::string>()].get<double>());
    out += fmt::format("{:>10}{:>10}  {}\n", r["completed"].dump(), r["dropped"].dump(),
                       r["meets_slos"].get<bool>() ? "yes" : "no");
  }
  std::vector<std::string> slo_text;
  for (const auto& s : report["slos"])
    slo_text.push_back(fmt::format("{} {} {:g}", s["metric"].get<std::string>(),
                                   s["bound"] == "max" ? "<=" : ">=", s["limit"].get<double>()));
  const std::string status = report["status"];
  if (report["capacity"].is_null())
    out += fmt::format("no value of {} meets {} (lowest tried fails)\n",
                       report["param"].get<std::string>(), fmt::join(slo_text, ", "));
  else
    out += fmt::format("capacity: {} = {} meets {}{}\n", report["param"].get<std::string>(),
                       report["capacity"].dump(), fmt::join(slo_text, ", "),
                       status == "above_range" ? " (the highest value tried: raise --hi)"
                       : status == "run_limit" ? " (stopped at --max-runs before --tolerance)"
                                               : "");
  return out;
}

}  // namespace servesim

// -----------------------------------------------------------------------------------------
// Command line.

namespace servesim {

CapacityCommand::CapacityCommand(CLI::App& app) {
  cmd = app.add_subcommand(
      "capacity",
      "Find the highest arrival rate (or other --param) meeting the SLOs, by bisection over "
      "runs; exit 1 when none does");
  cmd->add_option("scenario", options.scenario_path, "Scenario JSON file")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--slo", slos,
                  "METRIC<=X, METRIC>=X, or METRIC=X (bound by the metric's direction), "
                  "e.g. p99_ttft_ms=2000; repeatable, all must hold")
      ->required()
      ->take_all();
  cmd->add_option("--param", options.param,
                  "JSON pointer of the number searched (default /workload/rate_per_s)");
  cmd->add_option("--lo", options.lo, "Lowest value (default: current / 4, halved while failing)");
  cmd->add_option("--hi", options.hi, "Highest value (default: current x 4, doubled while met)");
  cmd->add_option("--tolerance", options.tolerance,
                  "Stop when the bracket is this narrow: X% of hi, or X absolute (default 2%)");
  cmd->add_flag("--integer", options.integer,
                "Search integers (implied when the scenario's value is an integer)");
  cmd->add_option("--max-runs", options.max_runs, "Give up after this many runs (default 40)");
  cmd->add_option("--set", options.overrides, "Override for every run: /json/pointer=VALUE")
      ->take_all();
  cmd->add_option("--seed", options.seed, "Override the scenario's /seed (same for every run)");
  cmd->add_option("-o,--output", output_path, "Write the report JSON here ('-' for stdout)");
  cmd->add_flag("-q,--quiet", quiet, "Print neither the table nor the progress bar");
}

bool CapacityCommand::parsed() const {
  return cmd->parsed();
}

int CapacityCommand::run(const std::string& command_line) {
  options.command_line = command_line;
  options.slos.clear();
  for (const auto& s : slos) options.slos.push_back(parse_slo(s));
  ProgressBar bar(progress_wanted(quiet), "servesim capacity");
  const auto report = run_capacity(options, &bar);
  bar.finish();
  const std::string text =
      report.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  if (output_path == "-")
    std::fwrite(text.data(), 1, text.size(), stdout);
  else if (!output_path.empty())
    write_file_atomically(output_path, text);
  if (!quiet) fmt::print(output_path == "-" ? stderr : stdout, "{}", capacity_table(report));
  return report["capacity"].is_null() ? 1 : 0;
}

}  // namespace servesim

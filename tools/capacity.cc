#include "tools/capacity.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>

#include "run/json_text.h"
#include "run/scenario_file.h"
#include "sim/error.h"
#include "tools/compare.h"
#include "tools/output_file.h"
#include "tools/process_stats.h"
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

SearchDirection implied_direction(const std::string& param) {
  const std::string last = param.substr(param.rfind('/') + 1);
  for (const char* less_load : {"time_scale", "think_time_s", "count", "replicas"})
    if (last == less_load) return SearchDirection::kMinimize;
  return SearchDirection::kMaximize;
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
  const bool minimize =
      options.direction.value_or(implied_direction(options.param)) == SearchDirection::kMinimize;
  const Tolerance tol = parse_tolerance(options.tolerance, "--tolerance");
  auto snap = [&](double v) { return integer ? std::max(1.0, std::round(v)) : v; };
  double lo = snap(options.lo ? *options.lo : current / 4);
  // Minimizing starts from the scenario as given (a replica count cannot grow past its
  // cluster), widening upward only if that misses.
  double hi = snap(options.hi ? *options.hi : minimize ? current : current * 4);
  if (!(lo > 0) || !(hi > lo))
    throw InputError(fmt::format("capacity: need 0 < --lo < --hi (have {:g} and {:g})", lo, hi));

  nlohmann::ordered_json report;
  auto& meta = report["servesim_capacity"];
  meta["version"] = SERVESIM_VERSION;
  meta["scenario"] = options.scenario_path;
  meta["command_line"] = options.command_line;
  report["param"] = options.param;
  report["direction"] = minimize ? "minimize" : "maximize";
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
    // The guard: a run past its wall time or the process past its memory bound stops the search
    // with the value that caused it (a far too large run is a bracket mistake, not a result).
    const auto started = std::chrono::steady_clock::now();
    auto guard = [&](const RunProgress& p) {
      const double wall_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      if (wall_s > options.max_run_wall_s)
        throw InputError(fmt::format(
            "capacity: the run at {}={} passed {:g} s of wall time ({:.0f} s simulated, {} "
            "requests done); narrow --lo/--hi or raise --max-run-wall-s",
            options.param, value_json(v).dump(), options.max_run_wall_s, p.simulated_s,
            p.completed));
      const double rss_gib = static_cast<double>(peak_rss_bytes()) / (1024.0 * 1024 * 1024);
      if (rss_gib > options.max_rss_gib)
        throw InputError(fmt::format(
            "capacity: the run at {}={} took the process past {:g} GiB ({:.1f} GiB); narrow "
            "--lo/--hi or raise --max-rss-gib",
            options.param, value_json(v).dump(), options.max_rss_gib, rss_gib));
    };
    RunOutput out = source.run(overrides, options.seed, guard);
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
  auto halve = [&](double v) { return integer ? std::max(1.0, std::floor(v / 2)) : v / 2; };
  auto floor_reached = [&](double v) { return v <= (integer ? 1.0 : 1e-9); };

  // `meet` is a value that meets the SLOs, `miss` one that misses them; maximizing, meet < miss,
  // minimizing, meet > miss. Each end is widened (halved or doubled) until it holds, unless
  // --lo/--hi fixed it.
  const bool meet_is_lo = !minimize;
  double meet = meet_is_lo ? lo : hi, miss = meet_is_lo ? hi : lo;
  const bool meet_fixed = meet_is_lo ? options.lo.has_value() : options.hi.has_value();
  const bool miss_fixed = meet_is_lo ? options.hi.has_value() : options.lo.has_value();
  auto toward_meet = [&](double v) { return meet_is_lo ? halve(v) : snap(v * 2); };
  auto toward_miss = [&](double v) { return meet_is_lo ? snap(v * 2) : halve(v); };
  std::string status = "found";
  bool meet_ok = evaluate(meet);
  while (!meet_ok && !meet_fixed && budget_left() && !(meet_is_lo && floor_reached(meet))) {
    miss = meet;
    meet = toward_meet(meet);
    meet_ok = evaluate(meet);
  }
  nlohmann::ordered_json capacity = nullptr;
  if (!meet_ok) {
    status = "none_meets";
  } else {
    bool miss_ok = evaluate(miss);
    while (miss_ok && !miss_fixed && budget_left() && !(!meet_is_lo && floor_reached(miss))) {
      meet = miss;
      miss = toward_miss(miss);
      miss_ok = evaluate(miss);
    }
    auto converged = [&] {
      const double width = std::fabs(miss - meet);
      if (integer) return width <= 1;
      return tol.relative ? width <= tol.value * std::max(meet, miss) : width <= tol.value;
    };
    if (miss_ok) {
      meet = miss;
      status = "range_end";
    } else {
      while (!converged() && budget_left()) {
        const double mid = integer ? std::floor((meet + miss) / 2) : (meet + miss) / 2;
        (evaluate(mid) ? meet : miss) = mid;
      }
      if (!converged()) status = "run_limit";
    }
    capacity = value_json(meet);
  }
  report["status"] = status;
  report["capacity"] = capacity;
  report["bracket"] = {
      {"meets", meet_ok ? value_json(meet) : nlohmann::ordered_json(nullptr)},
      {"fails", status == "range_end" ? nlohmann::ordered_json(nullptr)
                                      : value_json(status == "none_meets" ? meet : miss)}};
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
  const bool minimize = report.value("direction", "maximize") == "minimize";
  if (report["capacity"].is_null())
    out += fmt::format("no value of {} meets {} (the {} tried fails)\n",
                       report["param"].get<std::string>(), fmt::join(slo_text, ", "),
                       minimize ? "highest" : "lowest");
  else
    out += fmt::format("capacity: {} = {} meets {}{}\n", report["param"].get<std::string>(),
                       report["capacity"].dump(), fmt::join(slo_text, ", "),
                       status == "range_end"   ? (minimize ? " (the lowest value tried: lower --lo)"
                                                           : " (the highest value tried: raise --hi)")
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
      "Find the highest arrival rate (or other --param; the lowest for time_scale or replicas) "
      "meeting the SLOs, by bisection over runs; exit 1 when none does");
  // Defined when the command line names the command: other commands do not build them.
  cmd->preparse_callback([this](size_t) { define_options(); });
}

void CapacityCommand::define_options() {
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
  auto* maximize = cmd->add_flag_callback(
      "--maximize", [this] { options.direction = SearchDirection::kMaximize; },
      "Find the highest value that meets the SLOs (more is more load: rates, concurrency)");
  auto* minimize = cmd->add_flag_callback(
      "--minimize", [this] { options.direction = SearchDirection::kMinimize; },
      "Find the lowest value that meets the SLOs (more is less load: time_scale, replicas); "
      "default: implied by --param's last key (time_scale, think_time_s, count, replicas)");
  maximize->excludes(minimize);
  cmd->add_option("--max-run-wall-s", options.max_run_wall_s,
                  "Stop the search when one run passes this wall time (default 600)");
  cmd->add_option("--max-rss-gib", options.max_rss_gib,
                  "Stop the search when the process passes this peak memory (default 16)");
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
  const std::string text = json_text(report, 1) + "\n";
  if (output_path == "-")
    std::fwrite(text.data(), 1, text.size(), stdout);
  else if (!output_path.empty())
    write_file_atomically(output_path, text);
  if (!quiet) fmt::print(output_path == "-" ? stderr : stdout, "{}", capacity_table(report));
  return report["capacity"].is_null() ? 1 : 0;
}

}  // namespace servesim

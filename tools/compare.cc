#include "tools/compare.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "run/scenario_file.h"
#include "sim/error.h"
#include "tools/output_file.h"
#include "tools/progress.h"
#include "tools/sweep.h"

namespace servesim {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

double number(const nlohmann::ordered_json& v) {
  return v.get<double>();
}

/// The metrics to compare, in the base's order: those named by --metric or --tolerance, else
/// the default set, else (with --all-metrics) every numeric one. A metric that is numeric on one
/// side only goes to `one_sided` instead, with the side that has it.
std::vector<std::string> comparable_metrics(
    const nlohmann::ordered_json& base, const nlohmann::ordered_json& candidate,
    const CompareOptions& options,
    std::vector<std::pair<std::string, std::string>>* one_sided = nullptr) {
  auto numeric = [](const nlohmann::ordered_json& s, const std::string& m) {
    return s.contains(m) && s.at(m).is_number();
  };
  auto known = [&](const std::string& m) { return numeric(base, m) || numeric(candidate, m); };
  auto valid_list = [&] {
    std::vector<std::string> names;
    for (const auto& [k, v] : base.items())
      if (v.is_number()) names.push_back(k);
    return fmt::format("{}", fmt::join(names, ", "));
  };
  for (const auto& [m, t] : options.tolerances)
    if (!known(m))
      throw InputError(
          fmt::format("--tolerance {}: unknown summary metric; valid: {}", m, valid_list()));
  for (const auto& m : options.metrics)
    if (!known(m))
      throw InputError(
          fmt::format("--metric {}: unknown summary metric; valid: {}", m, valid_list()));
  std::set<std::string> wanted(options.metrics.begin(), options.metrics.end());
  for (const auto& [m, t] : options.tolerances) wanted.insert(m);
  const bool named = !wanted.empty();
  if (!named && !options.all_metrics)
    for (const auto& [m, t] : default_metric_tolerances()) wanted.insert(m);
  auto compared = [&](const std::string& m) {
    return options.all_metrics && !named ? true : wanted.count(m) > 0;
  };
  std::vector<std::string> out;
  for (const auto& [k, v] : base.items()) {
    if (!compared(k)) continue;
    if (numeric(base, k) && numeric(candidate, k))
      out.push_back(k);
    else if (numeric(base, k) && one_sided)
      one_sided->emplace_back(k, "base");
  }
  if (one_sided)
    for (const auto& [k, v] : candidate.items())
      if (compared(k) && numeric(candidate, k) && !numeric(base, k))
        one_sided->emplace_back(k, "new");
  return out;
}

Tolerance tolerance_for(const CompareOptions& options, const std::string& metric) {
  if (const auto it = options.tolerances.find(metric); it != options.tolerances.end())
    return it->second;
  if (options.default_tolerance) return *options.default_tolerance;
  for (const auto& [m, t] : default_metric_tolerances())
    if (m == metric) return t;
  return Tolerance{0, true};
}

/// Records metrics present on one side only: a named one cannot be checked, which fails the
/// comparison; one of the default set is reported and left alone.
void note_one_sided(nlohmann::ordered_json& verdict,
                    const std::vector<std::pair<std::string, std::string>>& one_sided,
                    const CompareOptions& options) {
  auto& list = verdict["one_sided"] = nlohmann::ordered_json::array();
  for (const auto& [m, side] : one_sided) {
    const bool named =
        options.tolerances.count(m) > 0 ||
        std::find(options.metrics.begin(), options.metrics.end(), m) != options.metrics.end();
    list.push_back({{"metric", m}, {"only_in", side}, {"named", named}});
    if (named) {
      verdict["regressed"] = true;
      verdict["regressions"].push_back(m);
    }
  }
}

/// How much worse `change` (new - base) is: positive means worse.
double worsening(MetricDirection d, double change) {
  return d == MetricDirection::kHigherIsBetter ? -change : change;
}

nlohmann::ordered_json fraction_or_null(double change, double base) {
  if (base == 0) return nullptr;
  return change / std::abs(base);
}

nlohmann::ordered_json run_meta(const nlohmann::ordered_json& result) {
  nlohmann::ordered_json m = nlohmann::ordered_json::object();
  if (!result.contains("servesim")) return m;
  for (const char* key : {"scenario", "scenario_hash", "seed", "command_line"})
    if (result["servesim"].contains(key)) m[key] = result["servesim"][key];
  return m;
}

}  // namespace

MetricDirection metric_direction(std::string_view m) {
  if (m.substr(0, 4) == "std_") return MetricDirection::kNeutral;
  for (std::string_view suffix : {"_ttft_ms", "_tpot_ms", "_itl_ms", "_e2el_ms", "_queue_ms"})
    if (ends_with(m, suffix)) return MetricDirection::kLowerIsBetter;
  for (std::string_view name : {"dropped", "preemptions", "truncated", "misroutes", "energy_j",
                                "energy_per_request_j", "energy_per_output_token_j"})
    if (m == name) return MetricDirection::kLowerIsBetter;
  for (std::string_view name : {"completed", "request_throughput", "output_throughput",
                                "total_token_throughput", "request_goodput"})
    if (m == name) return MetricDirection::kHigherIsBetter;
  return MetricDirection::kNeutral;
}

std::string_view direction_name(MetricDirection d) {
  switch (d) {
    case MetricDirection::kLowerIsBetter:
      return "lower_is_better";
    case MetricDirection::kHigherIsBetter:
      return "higher_is_better";
    case MetricDirection::kNeutral:
      break;
  }
  return "neutral";
}

const std::vector<std::pair<std::string, Tolerance>>& default_metric_tolerances() {
  static const std::vector<std::pair<std::string, Tolerance>> kDefaults = {
      {"dropped", Tolerance{0, false}},
      {"request_throughput", Tolerance{0.05, true}},
      {"output_throughput", Tolerance{0.05, true}},
      {"mean_ttft_ms", Tolerance{0.05, true}},
      {"p99_ttft_ms", Tolerance{0.10, true}},
      {"mean_tpot_ms", Tolerance{0.05, true}},
      {"p99_tpot_ms", Tolerance{0.10, true}},
      {"mean_e2el_ms", Tolerance{0.05, true}},
      {"p99_e2el_ms", Tolerance{0.10, true}}};
  return kDefaults;
}

double sign_test_p(int worse, int pairs) {
  if (pairs <= 0 || worse <= 0) return 1;
  // Sum of C(pairs, i) / 2^pairs for i >= worse, in doubles (pairs is a replication count).
  double p = 0, choose = 1;  // C(pairs, 0)
  for (int i = 0; i <= pairs; ++i) {
    if (i >= worse) p += choose;
    choose = choose * (pairs - i) / (i + 1);
  }
  return p / std::pow(2.0, pairs);
}

std::string table_number(double v, bool sign) {
  const double a = std::fabs(v);
  if (v == 0 || (a >= 1e-3 && a < 1e9)) {
    // Six significant digits in plain form, trailing zeros dropped.
    const int decimals = v == 0 ? 0 : std::max(0, 5 - static_cast<int>(std::floor(std::log10(a))));
    std::string text =
        sign ? fmt::format("{:+.{}f}", v, decimals) : fmt::format("{:.{}f}", v, decimals);
    if (text.find('.') != std::string::npos) {
      while (text.back() == '0') text.pop_back();
      if (text.back() == '.') text.pop_back();
    }
    return text;
  }
  return sign ? fmt::format("{:+.5e}", v) : fmt::format("{:.5e}", v);
}

double Tolerance::allowed(double base) const {
  return relative ? value * std::abs(base) : value;
}

std::string Tolerance::text() const {
  return relative ? fmt::format("{:g}%", value * 100) : fmt::format("{:g}", value);
}

Tolerance parse_tolerance(const std::string& text, const std::string& context) {
  Tolerance t;
  std::string number_text = text;
  t.relative = !text.empty() && text.back() == '%';
  if (t.relative) number_text.pop_back();
  size_t used = 0;
  double v = -1;
  try {
    v = std::stod(number_text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != number_text.size() || !(v >= 0) || !std::isfinite(v))
    throw InputError(fmt::format(
        "{}: tolerance '{}' must be a non-negative number, with % for relative", context, text));
  t.value = t.relative ? v / 100 : v;
  return t;
}

void add_tolerances(CompareOptions& options, const std::vector<std::string>& args) {
  for (const auto& a : args) {
    const auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0)
      throw InputError(fmt::format("--tolerance {}: expected METRIC=X% or METRIC=X", a));
    options.tolerances[a.substr(0, eq)] =
        parse_tolerance(a.substr(eq + 1), fmt::format("--tolerance {}", a));
  }
}

nlohmann::ordered_json compare_results(const nlohmann::ordered_json& base,
                                       const nlohmann::ordered_json& candidate,
                                       const CompareOptions& options) {
  if (!base.contains("summary") || !base["summary"].is_object())
    throw InputError("compare: the base result has no /summary object");
  if (!candidate.contains("summary") || !candidate["summary"].is_object())
    throw InputError("compare: the new result has no /summary object");
  const auto& bs = base["summary"];
  const auto& ns = candidate["summary"];
  nlohmann::ordered_json verdict;
  verdict["servesim_compare"] = {{"version", SERVESIM_VERSION}, {"mode", "results"}};
  verdict["base"] = run_meta(base);
  verdict["new"] = run_meta(candidate);
  verdict["regressed"] = false;
  verdict["regressions"] = nlohmann::ordered_json::array();
  verdict["warnings"] = nlohmann::ordered_json::array();
  const auto hash = [](const nlohmann::ordered_json& r) {
    return r.contains("servesim") && r["servesim"].contains("scenario_hash")
               ? r["servesim"]["scenario_hash"]
               : nlohmann::ordered_json(nullptr);
  };
  if (hash(base) != hash(candidate))
    verdict["warnings"].push_back(fmt::format(
        "the two results come from different scenarios (scenario_hash {} vs {}): every input "
        "difference, not only the policy, is in the comparison",
        hash(base).dump(), hash(candidate).dump()));
  else if (base.contains("servesim") && candidate.contains("servesim") &&
           base["servesim"].value("seed", nlohmann::ordered_json()) !=
               candidate["servesim"].value("seed", nlohmann::ordered_json()))
    verdict["warnings"].push_back(
        "the two results differ in seed only: the changes are seed noise; compare --scenario "
        "with --replications separates noise from a policy's effect");
  std::vector<std::pair<std::string, std::string>> one_sided;
  const std::vector<std::string> names = comparable_metrics(bs, ns, options, &one_sided);
  auto& metrics = verdict["metrics"] = nlohmann::ordered_json::array();
  for (const auto& m : names) {
    const MetricDirection d = metric_direction(m);
    const Tolerance tol = tolerance_for(options, m);
    const double b = number(bs[m]), n = number(ns[m]);
    const double change = n - b;
    const bool regressed = d != MetricDirection::kNeutral && worsening(d, change) > tol.allowed(b);
    nlohmann::ordered_json j;
    j["metric"] = m;
    j["direction"] = direction_name(d);
    j["base"] = bs[m];
    j["new"] = ns[m];
    j["change"] = change;
    j["change_fraction"] = fraction_or_null(change, b);
    j["tolerance"] = tol.text();
    j["allowed_change"] = d == MetricDirection::kNeutral ? nlohmann::ordered_json(nullptr)
                                                         : nlohmann::ordered_json(tol.allowed(b));
    j["regressed"] = regressed;
    if (regressed) {
      verdict["regressed"] = true;
      verdict["regressions"].push_back(m);
    }
    metrics.push_back(std::move(j));
  }
  note_one_sided(verdict, one_sided, options);
  return verdict;
}

double t_quantile_975(int dof) {
  static constexpr double kTable[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                                      2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                                      2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                                      2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
  if (dof < 1) return std::nan("");
  if (dof <= 30) return kTable[dof - 1];
  // Cornish-Fisher expansion around the normal quantile; below 1e-4 off beyond 30 dof.
  const double z = 1.959963984540054, n = dof;
  const double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
  return z + (z3 + z) / (4 * n) + (5 * z5 + 16 * z3 + 3 * z) / (96 * n * n) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * n * n * n);
}

nlohmann::ordered_json paired_verdict(const std::string& m, const std::vector<double>& bv,
                                      const std::vector<double>& nv, const Tolerance& tol) {
  const size_t k = bv.size();
  std::vector<double> diff;
  for (size_t r = 0; r < k; ++r) diff.push_back(nv[r] - bv[r]);
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
  };
  const double base_mean = mean(bv), new_mean = mean(nv), mean_diff = mean(diff);
  double var = 0;
  for (double x : diff) var += (x - mean_diff) * (x - mean_diff);
  const MetricDirection d = metric_direction(m);
  int pairs_worse = 0;
  for (size_t r = 0; r < k; ++r)
    if (worsening(d, diff[r]) > tol.allowed(bv[r])) ++pairs_worse;
  const double sign_p = sign_test_p(pairs_worse, static_cast<int>(k));
  nlohmann::ordered_json j;
  j["metric"] = m;
  j["direction"] = direction_name(d);
  j["base"] = base_mean;
  j["new"] = new_mean;
  j["change"] = mean_diff;
  j["change_fraction"] = fraction_or_null(mean_diff, base_mean);
  // The worse end of the interval decides: a regression must be clear of the noise.
  double worst_case_better = worsening(d, mean_diff);
  if (k >= 2) {
    const double half = t_quantile_975(static_cast<int>(k) - 1) *
                        std::sqrt(var / static_cast<double>(k - 1)) /
                        std::sqrt(static_cast<double>(k));
    j["ci95_low"] = mean_diff - half;
    j["ci95_high"] = mean_diff + half;
    worst_case_better = std::min(worsening(d, mean_diff - half), worsening(d, mean_diff + half));
  } else {
    j["ci95_low"] = nullptr;
    j["ci95_high"] = nullptr;
  }
  const bool directional = d != MetricDirection::kNeutral;
  const bool regressed =
      directional && (worst_case_better > tol.allowed(base_mean) || sign_p < 0.05);
  j["pairs_worse"] = directional ? nlohmann::ordered_json(pairs_worse) : nullptr;
  j["sign_test_p"] = directional ? nlohmann::ordered_json(sign_p) : nullptr;
  j["tolerance"] = tol.text();
  j["allowed_change"] = directional ? nlohmann::ordered_json(tol.allowed(base_mean)) : nullptr;
  j["regressed"] = regressed;
  j["base_values"] = bv;
  j["new_values"] = nv;
  return j;
}

nlohmann::ordered_json compare_replications(const ReplicationOptions& run,
                                            const CompareOptions& options, ProgressBar* progress) {
  if (run.replications < 1) throw InputError("--replications must be at least 1");
  const ScenarioSource source(run.scenario_path);
  const auto k = static_cast<size_t>(run.replications);
  std::vector<std::string> base_set = run.common_overrides, new_set = run.common_overrides;
  base_set.insert(base_set.end(), run.base_overrides.begin(), run.base_overrides.end());
  new_set.insert(new_set.end(), run.new_overrides.begin(), run.new_overrides.end());
  const uint64_t first_seed = run.first_seed ? *run.first_seed : source.seed(run.common_overrides);
  source.with_overrides(base_set);  // bad --set: fail before running anything
  source.with_overrides(new_set);

  // Jobs 0..k-1 are the base side, k..2k-1 the new side; replication r uses first_seed + r.
  std::vector<nlohmann::ordered_json> results(2 * k);
  parallel_for(
      2 * k, run.threads,
      [&](size_t i) {
        const bool is_new = i >= k;
        const uint64_t seed = first_seed + (i % k);
        RunOutput out = source.run(is_new ? new_set : base_set, seed);
        results[i]["servesim"] = std::move(out.result["servesim"]);
        results[i]["summary"] = std::move(out.result["summary"]);
      },
      [&](size_t done) {
        if (progress)
          progress->update_steps(static_cast<int64_t>(done), static_cast<int64_t>(2 * k), "runs");
      });

  // Metrics numeric in every run of both sides.
  std::vector<std::string> names =
      comparable_metrics(results[0]["summary"], results[k]["summary"], options);
  std::erase_if(names, [&](const std::string& m) {
    return std::any_of(results.begin(), results.end(), [&](const nlohmann::ordered_json& r) {
      return !r["summary"].contains(m) || !r["summary"][m].is_number();
    });
  });

  nlohmann::ordered_json verdict;
  verdict["servesim_compare"] = {{"version", SERVESIM_VERSION},
                                 {"mode", "replications"},
                                 {"scenario", run.scenario_path},
                                 {"command_line", run.command_line},
                                 {"replications", run.replications},
                                 {"first_seed", first_seed},
                                 {"confidence", 0.95}};
  verdict["base"] = {{"set", base_set}};
  verdict["new"] = {{"set", new_set}};
  verdict["regressed"] = false;
  verdict["regressions"] = nlohmann::ordered_json::array();
  auto& metrics = verdict["metrics"] = nlohmann::ordered_json::array();
  for (const auto& m : names) {
    std::vector<double> bv, nv;
    for (size_t r = 0; r < k; ++r) {
      bv.push_back(number(results[r]["summary"][m]));
      nv.push_back(number(results[k + r]["summary"][m]));
    }
    nlohmann::ordered_json j = paired_verdict(m, bv, nv, tolerance_for(options, m));
    if (j["regressed"].get<bool>()) {
      verdict["regressed"] = true;
      verdict["regressions"].push_back(m);
    }
    metrics.push_back(std::move(j));
  }
  auto& runs = verdict["runs"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < 2 * k; ++i)
    runs.push_back({{"side", i < k ? "base" : "new"},
                    {"replication", i % k},
                    {"seed", results[i]["servesim"]["seed"]},
                    {"scenario_hash", results[i]["servesim"]["scenario_hash"]},
                    {"command_line", results[i]["servesim"]["command_line"]}});
  return verdict;
}

std::string verdict_table(const nlohmann::ordered_json& verdict) {
  const bool with_ci = verdict["servesim_compare"]["mode"] == "replications";
  size_t name_width = 6;
  for (const auto& m : verdict["metrics"])
    name_width = std::max(name_width, m["metric"].get<std::string>().size());
  std::string out = fmt::format("{:<{}}  {:>14}{:>14}{:>14}{:>10}", "metric", name_width, "base",
                                "new", "change", "change");
  if (with_ci) out += fmt::format("{:>32}{:>12}", "95% CI of change", "worse/sign");
  out += fmt::format("{:>11}  {}\n", "tolerance", "verdict");
  for (const auto& m : verdict["metrics"]) {
    const double b = m["base"].get<double>(), n = m["new"].get<double>();
    const std::string frac =
        m["change_fraction"].is_null()
            ? std::string("-")
            : fmt::format("{:+.1f}%", m["change_fraction"].get<double>() * 100);
    out += fmt::format("{:<{}}  {:>14}{:>14}{:>14}{:>10}", m["metric"].get<std::string>(),
                       name_width, table_number(b), table_number(n),
                       table_number(m["change"].get<double>(), true), frac);
    if (with_ci) {
      out +=
          m["ci95_low"].is_null()
              ? fmt::format("{:>32}", "-")
              : fmt::format("{:>32}",
                            fmt::format("[{}, {}]", table_number(m["ci95_low"].get<double>(), true),
                                        table_number(m["ci95_high"].get<double>(), true)));
      out += m["pairs_worse"].is_null()
                 ? fmt::format("{:>12}", "-")
                 : fmt::format("{:>12}", fmt::format("{}/{} p={:.2g}", m["pairs_worse"].get<int>(),
                                                     m["base_values"].size(),
                                                     m["sign_test_p"].get<double>()));
    }
    const bool neutral = m["direction"] == "neutral";
    out +=
        fmt::format("{:>11}  {}\n", neutral ? std::string("-") : m["tolerance"].get<std::string>(),
                    neutral ? "" : (m["regressed"].get<bool>() ? "REGRESSED" : "ok"));
  }
  if (verdict.contains("one_sided"))
    for (const auto& o : verdict["one_sided"])
      out += fmt::format("{:<{}}  only in the {} result{}\n", o["metric"].get<std::string>(),
                         name_width, o["only_in"].get<std::string>(),
                         o["named"].get<bool>() ? ": cannot be checked (REGRESSED)" : "");
  if (verdict.contains("warnings"))
    for (const auto& w : verdict["warnings"]) out += "warning: " + w.get<std::string>() + "\n";
  out += verdict["regressed"].get<bool>()
             ? fmt::format("regressed: {}\n", fmt::join(verdict["regressions"], ", "))
             : std::string("no regression\n");
  return out;
}

}  // namespace servesim

// -----------------------------------------------------------------------------------------
// Command line.

namespace servesim {

CompareCommand::CompareCommand(CLI::App& app) {
  cmd = app.add_subcommand(
      "compare",
      "Compare two results (BASE.json NEW.json), or two variants of a scenario over paired "
      "seeds (--scenario with --base-set/--new-set and --replications K); exit 1 on a "
      "regression beyond tolerance");
  // Defined when the command line names the command: other commands do not build them.
  cmd->preparse_callback([this](size_t) { define_options(); });
}

void CompareCommand::define_options() {
  cmd->add_option("results", files, "BASE.json NEW.json: two result files")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tolerance", tolerances,
                  "METRIC=X% (relative to base) or METRIC=X (absolute, in the metric's unit), "
                  "e.g. p99_ttft_ms=5%; repeatable")
      ->take_all();
  cmd->add_option("--default-tolerance", default_tolerance,
                  "Tolerance of every compared metric without its own --tolerance (default: "
                  "the default set's, 0% for others)");
  cmd->add_option("--metric", metrics,
                  "Compare this summary metric; repeatable. The metrics compared are those "
                  "named by --metric or --tolerance; none named: dropped, throughputs, mean and "
                  "p99 of TTFT, TPOT and E2EL (5% / 10% for p99, 0 for dropped)")
      ->take_all();
  cmd->add_flag("--all-metrics", all_metrics,
                "With no metric named, compare every numeric summary metric");
  cmd->add_option("--verdict", verdict_path, "Write the verdict JSON here ('-' for stdout)");
  cmd->add_option("--scenario", replication.scenario_path,
                  "Run this scenario for both sides instead of reading result files")
      ->check(CLI::ExistingFile);
  cmd->add_option("--base-set", replication.base_overrides,
                  "Override for the base side only: /json/pointer=VALUE; repeatable")
      ->take_all();
  cmd->add_option("--new-set", replication.new_overrides,
                  "Override for the new side only: /json/pointer=VALUE; repeatable")
      ->take_all();
  cmd->add_option("--set", replication.common_overrides, "Override for both sides; repeatable")
      ->take_all();
  cmd->add_option("--replications", replication.replications,
                  "Paired runs per side: replication r uses seed first+r on both sides "
                  "(default 5)");
  cmd->add_option("--seed", replication.first_seed,
                  "First seed of the replications (default: the scenario's /seed)");
  cmd->add_option("-j,--jobs", replication.threads,
                  "Runs at once (default 0: one per CPU core); the verdict does not depend on it");
  cmd->add_flag("-q,--quiet", quiet, "Print no table (the exit status still tells)");
  replication.threads = 0;
}

bool CompareCommand::parsed() const {
  return cmd->parsed();
}

int CompareCommand::run(const std::string& command_line) {
  CompareOptions options;
  add_tolerances(options, tolerances);
  if (!default_tolerance.empty())
    options.default_tolerance = parse_tolerance(default_tolerance, "--default-tolerance");
  options.metrics = metrics;
  options.all_metrics = all_metrics;
  nlohmann::ordered_json verdict;
  const bool scenario_mode = !replication.scenario_path.empty();
  if (scenario_mode) {
    if (!files.empty())
      throw InputError("compare: give either BASE.json NEW.json or --scenario, not both");
    if (replication.base_overrides.empty() && replication.new_overrides.empty())
      throw InputError("compare: --scenario needs --base-set or --new-set to differ");
    replication.command_line = command_line;
    ProgressBar bar(progress_wanted(quiet), "servesim compare");
    verdict = compare_replications(replication, options, &bar);
  } else {
    if (files.size() != 2)
      throw InputError(
          "compare: give BASE.json NEW.json, or --scenario S.json with --base-set/--new-set");
    // Keep the result's own key order for the table; read_json_file only names the error.
    auto load = [](const std::string& path) {
      std::ifstream in(path, std::ios::binary);
      nlohmann::ordered_json doc = nlohmann::ordered_json::parse(in, nullptr, false);
      if (doc.is_discarded()) read_json_file(path);
      return doc;
    };
    verdict = compare_results(load(files[0]), load(files[1]), options);
    verdict["base"]["file"] = files[0];
    verdict["new"]["file"] = files[1];
    verdict["servesim_compare"]["command_line"] = command_line;
  }
  const std::string text =
      verdict.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  if (verdict_path == "-")
    std::fwrite(text.data(), 1, text.size(), stdout);
  else if (!verdict_path.empty())
    write_file_atomically(verdict_path, text);
  if (!quiet)
    fmt::print(verdict_path == "-" ? stderr : stdout, "{}", verdict_table(verdict));
  else if (verdict.contains("warnings"))
    for (const auto& w : verdict["warnings"])
      fmt::print(stderr, "warning: {}\n", w.get<std::string>());
  return verdict["regressed"].get<bool>() ? 1 : 0;
}

}  // namespace servesim

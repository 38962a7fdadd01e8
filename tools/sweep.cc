#include "tools/sweep.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "run/scenario_file.h"
#include "run/scenario_hash.h"
#include "sim/error.h"
#include "tools/output_file.h"
#include "tools/progress.h"

namespace servesim {
namespace {

std::string shell_quote(const std::string& s) {
  const bool plain = !s.empty() && s.find_first_not_of(
                                       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789_-+=/.,:@%") == std::string::npos;
  if (plain) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

nlohmann::ordered_json parse_value(const std::string& text) {
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return text;  // a string, or a value (1e400) that --set then rejects with its message
  }
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string cell_text(const nlohmann::ordered_json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

ScenarioSource::ScenarioSource(std::string path) : path_(std::move(path)) {
  doc_ = read_json_file(path_);
  base_dir_ = std::filesystem::path(path_).parent_path().string();
  if (base_dir_.empty()) base_dir_ = ".";
}

nlohmann::json ScenarioSource::with_overrides(const std::vector<std::string>& overrides) const {
  nlohmann::json doc = doc_;
  apply_overrides(doc, overrides);
  return doc;
}

uint64_t ScenarioSource::seed(const std::vector<std::string>& overrides) const {
  const nlohmann::json doc = with_overrides(overrides);
  const auto it = doc.find("seed");
  if (it == doc.end()) return 0;
  if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0))
    throw InputError(fmt::format("{}: /seed: expected a non-negative integer", path_));
  return it->get<uint64_t>();
}

RunOutput ScenarioSource::run(const std::vector<std::string>& overrides,
                              std::optional<uint64_t> seed,
                              std::function<void(const RunProgress&)> on_progress) const {
  RunOptions options;
  options.on_progress = std::move(on_progress);
  options.overrides = overrides;
  options.seed = seed;
  options.command_line = run_command_line(path_, overrides, seed);
  return run_scenario(doc_, path_, base_dir_, options);
}

std::string run_command_line(const std::string& scenario_path,
                             const std::vector<std::string>& overrides,
                             std::optional<uint64_t> seed) {
  std::string out = "servesim run " + shell_quote(scenario_path);
  for (const auto& o : overrides) out += " --set " + shell_quote(o);
  if (seed) out += fmt::format(" --seed {}", *seed);
  return out;
}

void parallel_for(size_t count, int threads, const std::function<void(size_t)>& job,
                  const std::function<void(size_t)>& on_done) {
  size_t workers = threads > 0 ? static_cast<size_t>(threads)
                               : std::max<size_t>(1, std::thread::hardware_concurrency());
  workers = std::min(workers, std::max<size_t>(count, 1));
  std::vector<std::exception_ptr> errors(count);
  std::atomic<size_t> next{0};
  std::mutex done_mutex;
  size_t done = 0;
  auto worker = [&] {
    for (size_t i = next++; i < count; i = next++) {
      try {
        job(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(done_mutex);
      ++done;
      if (on_done) on_done(done);
    }
  };
  if (workers <= 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    for (size_t t = 0; t < workers; ++t) pool.emplace_back(worker);
    for (auto& t : pool) t.join();
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

std::vector<std::string> split_values(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      current += c;
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    if (c == '[' || c == '{') ++depth;
    if (c == ']' || c == '}') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  out.push_back(current);
  return out;
}

SweepAxis parse_grid(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || text[0] != '/')
    throw InputError(fmt::format("--grid {}: expected /json/pointer=VALUE,VALUE,...", text));
  SweepAxis axis;
  axis.pointer = text.substr(0, eq);
  axis.values = split_values(text.substr(eq + 1));
  for (const auto& v : axis.values)
    if (v.empty()) throw InputError(fmt::format("--grid {}: empty value", text));
  return axis;
}

nlohmann::ordered_json run_sweep(const SweepOptions& options, ProgressBar* progress) {
  if (options.axes.empty()) throw InputError("sweep: give at least one --grid /pointer=V1,V2");
  if (options.output_dir.empty()) throw InputError("sweep: give an output folder with -o DIR");
  const ScenarioSource source(options.scenario_path);
  size_t count = 1;
  for (const auto& axis : options.axes) count *= axis.values.size();

  // Point i's value on axis a: mixed radix, the last axis fastest.
  std::vector<std::vector<size_t>> choice(count, std::vector<size_t>(options.axes.size()));
  for (size_t i = 0; i < count; ++i) {
    size_t rest = i;
    for (size_t a = options.axes.size(); a-- > 0;) {
      choice[i][a] = rest % options.axes[a].values.size();
      rest /= options.axes[a].values.size();
    }
  }
  const int digits = static_cast<int>(fmt::format("{}", count - 1).size());
  auto file_name = [&](size_t i) {
    return fmt::format("point_{:0{}}.json", i, std::max(digits, 3));
  };
  auto point_overrides = [&](size_t i) {
    std::vector<std::string> o = options.overrides;
    for (size_t a = 0; a < options.axes.size(); ++a)
      o.push_back(options.axes[a].pointer + "=" + options.axes[a].values[choice[i][a]]);
    return o;
  };
  // Catch a bad pointer or value before spending time on threads.
  for (size_t i = 0; i < count; ++i) source.with_overrides(point_overrides(i));

  std::filesystem::create_directories(options.output_dir);
  std::vector<nlohmann::ordered_json> summaries(count);
  std::vector<std::string> hashes(count);
  std::vector<uint64_t> seeds(count);
  parallel_for(
      count, options.threads,
      [&](size_t i) {
        RunOutput out = source.run(point_overrides(i), options.seed);
        const std::string text =
            out.result.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
        write_file_atomically((std::filesystem::path(options.output_dir) / file_name(i)).string(),
                              text);
        summaries[i] = std::move(out.result["summary"]);
        hashes[i] = out.result["servesim"]["scenario_hash"].get<std::string>();
        seeds[i] = out.result["servesim"]["seed"].get<uint64_t>();
      },
      [&](size_t done) {
        if (progress)
          progress->update_steps(static_cast<int64_t>(done), static_cast<int64_t>(count), "points");
      });

  nlohmann::ordered_json table;
  auto& meta = table["servesim_sweep"];
  meta["version"] = SERVESIM_VERSION;
  meta["scenario"] = options.scenario_path;
  meta["scenario_hash"] = scenario_hash(source.with_overrides(options.overrides));
  meta["command_line"] = options.command_line;
  auto& axes = table["axes"] = nlohmann::ordered_json::array();
  for (const auto& axis : options.axes) {
    nlohmann::ordered_json values = nlohmann::ordered_json::array();
    for (const auto& v : axis.values) values.push_back(parse_value(v));
    axes.push_back({{"pointer", axis.pointer}, {"values", values}});
  }
  auto& points = table["points"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < count; ++i) {
    nlohmann::ordered_json p;
    p["index"] = i;
    p["file"] = file_name(i);
    auto& values = p["values"] = nlohmann::ordered_json::object();
    for (size_t a = 0; a < options.axes.size(); ++a)
      values[options.axes[a].pointer] = parse_value(options.axes[a].values[choice[i][a]]);
    p["seed"] = seeds[i];
    p["scenario_hash"] = hashes[i];
    p["summary"] = std::move(summaries[i]);
    points.push_back(std::move(p));
  }
  const std::filesystem::path dir(options.output_dir);
  write_file_atomically(
      (dir / "sweep.json").string(),
      table.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
  write_file_atomically((dir / "sweep.csv").string(), sweep_csv(table));
  return table;
}

std::string sweep_csv(const nlohmann::ordered_json& table) {
  const auto& points = table.at("points");
  std::vector<std::string> metrics;
  if (!points.empty())
    for (const auto& [k, v] : points.front().at("summary").items()) metrics.push_back(k);
  std::string out = "index,file";
  for (const auto& axis : table.at("axes")) out += "," + csv_field(axis.at("pointer"));
  for (const auto& m : metrics) out += "," + csv_field(m);
  out += "\n";
  for (const auto& p : points) {
    out += fmt::format("{},{}", p.at("index").get<size_t>(), csv_field(p.at("file")));
    for (const auto& [k, v] : p.at("values").items()) out += "," + csv_field(cell_text(v));
    for (const auto& m : metrics) {
      const auto& s = p.at("summary");
      out += "," + (s.contains(m) ? csv_field(cell_text(s.at(m))) : std::string());
    }
    out += "\n";
  }
  return out;
}

std::string sweep_text_table(const nlohmann::ordered_json& table) {
  static constexpr const char* kColumns[] = {"completed",   "dropped",     "request_throughput",
                                             "p99_ttft_ms", "p99_tpot_ms", "p99_e2el_ms"};
  std::vector<std::string> headers;
  for (const auto& axis : table.at("axes")) headers.push_back(axis.at("pointer"));
  std::vector<size_t> widths;
  for (const auto& h : headers) widths.push_back(std::max<size_t>(h.size(), 8));
  for (const auto& p : table.at("points")) {
    size_t a = 0;
    for (const auto& [k, v] : p.at("values").items())
      widths[a] = std::max(widths[a], cell_text(v).size()), ++a;
  }
  std::string out;
  for (size_t a = 0; a < headers.size(); ++a) out += fmt::format("{:<{}}  ", headers[a], widths[a]);
  for (const char* c : kColumns) out += fmt::format("{:>19}", c);
  out += "\n";
  for (const auto& p : table.at("points")) {
    size_t a = 0;
    for (const auto& [k, v] : p.at("values").items())
      out += fmt::format("{:<{}}  ", cell_text(v), widths[a++]);
    for (const char* c : kColumns) {
      const auto& s = p.at("summary");
      if (!s.contains(c))
        out += fmt::format("{:>19}", "-");
      else if (s.at(c).is_number_float())
        out += fmt::format("{:>19.2f}", s.at(c).get<double>());
      else
        out += fmt::format("{:>19}", s.at(c).dump());
    }
    out += "\n";
  }
  return out;
}

}  // namespace servesim

// -----------------------------------------------------------------------------------------
// Command line.

namespace servesim {

SweepCommand::SweepCommand(CLI::App& app) {
  cmd = app.add_subcommand(
      "sweep",
      "Run a grid of --set values on parallel threads: one result per point plus a combined "
      "table (sweep.csv, sweep.json)");
  cmd->add_option("scenario", options.scenario_path, "Scenario JSON file")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--grid", grids,
                  "An axis: /json/pointer=V1,V2,... (values parsed like --set; commas inside "
                  "[] {} or quotes do not split); repeatable, the first varies slowest")
      ->required()
      ->take_all();
  cmd->add_option("--set", options.overrides, "Override for every point: /json/pointer=VALUE")
      ->take_all();
  cmd->add_option("--seed", options.seed, "Override the scenario's /seed for every point");
  cmd->add_option("-j,--jobs", options.threads,
                  "Points run at once (default 0: one per CPU core); results do not depend on it");
  cmd->add_option("-o,--output-dir", options.output_dir,
                  "Folder for point_NNN.json, sweep.json and sweep.csv (created if missing)")
      ->required();
  cmd->add_flag("-q,--quiet", quiet, "Print neither the table nor the progress bar");
  options.threads = 0;
}

bool SweepCommand::parsed() const {
  return cmd->parsed();
}

int SweepCommand::run(const std::string& command_line) {
  options.command_line = command_line;
  options.axes.clear();
  for (const auto& g : grids) options.axes.push_back(parse_grid(g));
  ProgressBar bar(progress_wanted(quiet), "servesim sweep");
  const auto table = run_sweep(options, &bar);
  bar.finish();
  if (!quiet) {
    fmt::print("{}", sweep_text_table(table));
    fmt::print("{} points in {} (sweep.csv, sweep.json, point_*.json)\n", table["points"].size(),
               options.output_dir);
  }
  return 0;
}

}  // namespace servesim

#include "tools/sweep.h"

#include <fmt/format.h>

#include <atomic>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "run/json_text.h"
#include "run/scenario_file.h"
#include "run/scenario_hash.h"
#include "sim/error.h"
#include "tools/output_file.h"
#include "tools/progress.h"

namespace servesim {

namespace {

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

ScenarioSource::ScenarioSource(nlohmann::json doc, std::string label, std::string base_dir)
    : path_(std::move(label)), base_dir_(std::move(base_dir)), doc_(std::move(doc)) {}

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

size_t SweepPlan::point_count() const {
  size_t count = 1;
  for (const auto& axis : axes) count *= axis.values.size();
  return count;
}

std::string SweepPlan::point_file(size_t index) const {
  const int digits = static_cast<int>(fmt::format("{}", point_count() - 1).size());
  return fmt::format("point_{:0{}}.json", index, std::max(digits, 3));
}

std::vector<size_t> SweepPlan::point_choice(size_t index) const {
  std::vector<size_t> choice(axes.size());
  for (size_t a = axes.size(); a-- > 0;) {
    choice[a] = index % axes[a].values.size();
    index /= axes[a].values.size();
  }
  return choice;
}

std::vector<std::string> SweepPlan::point_overrides(size_t index) const {
  std::vector<std::string> out = overrides;
  const std::vector<size_t> choice = point_choice(index);
  for (size_t a = 0; a < axes.size(); ++a)
    out.push_back(axes[a].pointer + "=" + axes[a].values[choice[a]]);
  return out;
}

SweepPlan plan_sweep(const SweepOptions& options) {
  if (options.axes.empty()) throw InputError("sweep: give at least one --grid /pointer=V1,V2");
  const ScenarioSource source(options.scenario_path);
  SweepPlan plan;
  plan.scenario_label = options.scenario_path;
  plan.base_dir = std::filesystem::absolute(source.base_dir()).lexically_normal().string();
  plan.scenario = source.document();
  plan.axes = options.axes;
  plan.overrides = options.overrides;
  plan.seed = options.seed;
  // What decides the results, and nothing of how they were run: the same for every grouping.
  plan.command_line = "servesim sweep " + shell_quote(options.scenario_path);
  for (const auto& o : options.overrides) plan.command_line += " --set " + shell_quote(o);
  if (options.seed) plan.command_line += fmt::format(" --seed {}", *options.seed);
  for (const auto& axis : options.axes) {
    std::string values;
    for (const auto& v : axis.values) values += (values.empty() ? "" : ",") + v;
    plan.command_line += " --grid " + shell_quote(axis.pointer + "=" + values);
  }
  // Catch a bad pointer or value before spending time on runs.
  for (size_t i = 0; i < plan.point_count(); ++i) source.with_overrides(plan.point_overrides(i));
  return plan;
}

std::string run_sweep_point(const SweepPlan& plan, const ScenarioSource& source, size_t index) {
  const RunOutput out = source.run(plan.point_overrides(index), plan.seed);
  return json_text(out.result, 1) + "\n";
}

PointRecord point_record(const std::string& result_text, const std::string& file) {
  try {
    auto result = nlohmann::ordered_json::parse(result_text);
    PointRecord record;
    record.summary = std::move(result.at("summary"));
    record.scenario_hash = result.at("servesim").at("scenario_hash").get<std::string>();
    record.seed = result.at("servesim").at("seed").get<uint64_t>();
    return record;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: not a servesim result: {}", file, e.what()));
  }
}

nlohmann::ordered_json sweep_table(const SweepPlan& plan, std::vector<PointRecord> records) {
  const ScenarioSource source(plan.scenario, plan.scenario_label, plan.base_dir);
  nlohmann::ordered_json table;
  auto& meta = table["servesim_sweep"];
  meta["version"] = SERVESIM_VERSION;
  meta["scenario"] = plan.scenario_label;
  meta["scenario_hash"] = scenario_hash(source.with_overrides(plan.overrides));
  meta["command_line"] = plan.command_line;
  auto& axes = table["axes"] = nlohmann::ordered_json::array();
  for (const auto& axis : plan.axes) {
    nlohmann::ordered_json values = nlohmann::ordered_json::array();
    for (const auto& v : axis.values) values.push_back(parse_value(v));
    axes.push_back({{"pointer", axis.pointer}, {"values", values}});
  }
  auto& points = table["points"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < records.size(); ++i) {
    nlohmann::ordered_json p;
    p["index"] = i;
    p["file"] = plan.point_file(i);
    auto& values = p["values"] = nlohmann::ordered_json::object();
    const std::vector<size_t> choice = plan.point_choice(i);
    for (size_t a = 0; a < plan.axes.size(); ++a)
      values[plan.axes[a].pointer] = parse_value(plan.axes[a].values[choice[a]]);
    p["seed"] = records[i].seed;
    p["scenario_hash"] = std::move(records[i].scenario_hash);
    p["summary"] = std::move(records[i].summary);
    points.push_back(std::move(p));
  }
  return table;
}

void write_sweep_table(const std::string& dir, const nlohmann::ordered_json& table) {
  const std::filesystem::path folder(dir);
  write_file_atomically((folder / "sweep.json").string(), json_text(table, 1) + "\n");
  write_file_atomically((folder / "sweep.csv").string(), sweep_csv(table));
}

nlohmann::ordered_json run_sweep(const SweepOptions& options, ProgressBar* progress) {
  if (options.output_dir.empty()) throw InputError("sweep: give an output folder with -o DIR");
  const SweepPlan plan = plan_sweep(options);
  const ScenarioSource source(plan.scenario, plan.scenario_label, plan.base_dir);
  const size_t count = plan.point_count();
  std::filesystem::create_directories(options.output_dir);
  std::vector<PointRecord> records(count);
  // A point the scenario refuses (a model that does not fit, a bad combination) is recorded
  // with its error and the others still run; then no table is written, since it would pass a
  // partial sweep off as whole.
  std::vector<std::string> errors(count);
  parallel_for(
      count, options.threads,
      [&](size_t i) {
        std::string text;
        try {
          text = run_sweep_point(plan, source, i);
        } catch (const InputError& e) {
          errors[i] = e.what();
          return;
        }
        const std::string file = plan.point_file(i);
        write_file_atomically((std::filesystem::path(options.output_dir) / file).string(), text);
        records[i] = point_record(text, file);
      },
      [&](size_t done) {
        if (progress)
          progress->update_steps(static_cast<int64_t>(done), static_cast<int64_t>(count), "points");
      });
  nlohmann::ordered_json failed = nlohmann::ordered_json::array();
  for (size_t i = 0; i < count; ++i)
    if (!errors[i].empty())
      failed.push_back({{"index", i}, {"set", plan.point_overrides(i)}, {"error", errors[i]}});
  const std::filesystem::path dir(options.output_dir);
  // Every point refused: the sweep itself is bad input (a misspelt value), said as one error.
  if (count > 0 && failed.size() == count) throw InputError(errors.front());
  if (!failed.empty()) {
    std::error_code ec;
    for (const char* stale : {"sweep.json", "sweep.csv"}) std::filesystem::remove(dir / stale, ec);
    write_file_atomically((dir / "failed.json").string(), failed.dump(1) + "\n");
    return {{"failed", std::move(failed)},
            {"point_count", count},
            {"points", nlohmann::ordered_json::array()}};
  }
  std::error_code ec;
  std::filesystem::remove(dir / "failed.json", ec);
  nlohmann::ordered_json table = sweep_table(plan, std::move(records));
  write_sweep_table(options.output_dir, table);
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

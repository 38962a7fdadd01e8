#include "tools/sweep_job.h"

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "run/scenario_file.h"
#include "sim/error.h"
#include "sim/json_parse.h"
#include "tools/output_file.h"
#include "tools/progress.h"

namespace servesim {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPlanKey = "servesim_sweep_plan";

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot read", path.string()));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

nlohmann::ordered_json plan_json(const SweepPlan& plan) {
  nlohmann::ordered_json out;
  out[kPlanKey] = {{"version", SERVESIM_VERSION}, {"points", plan.point_count()}};
  out["command_line"] = plan.command_line;
  out["scenario"] = plan.scenario_label;
  out["base_dir"] = plan.base_dir;
  out["overrides"] = plan.overrides;
  out["seed"] = plan.seed ? nlohmann::ordered_json(*plan.seed) : nlohmann::ordered_json();
  auto& axes = out["axes"] = nlohmann::ordered_json::array();
  for (const auto& axis : plan.axes)
    axes.push_back({{"pointer", axis.pointer}, {"values", axis.values}});
  auto& points = out["points"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < plan.point_count(); ++i)
    points.push_back({{"file", plan.point_file(i)}, {"set", plan.point_overrides(i)}});
  // Kept as read, so an edit to the scenario file while the job waits changes nothing.
  out["scenario_document"] = nlohmann::ordered_json::parse(plan.scenario.dump());
  return out;
}

std::string plan_text(const SweepPlan& plan) {
  return plan_json(plan).dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) +
         "\n";
}

/// Like write_file_atomically, through a temporary file of this process's own: shards started
/// together may all write the same plan at once.
void write_shared_file(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + fmt::format(".tmp{}", getpid());
  bool written = false;
  {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.close();
    written = static_cast<bool>(out);
  }
  std::error_code ec;
  if (written) fs::rename(tmp, path, ec);
  if (!written || ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw InputError(fmt::format("{}: cannot write", path.string()));
  }
}

fs::path failure_note(const std::string& dir, const SweepPlan& plan, size_t index) {
  const std::string file = plan.point_file(index);
  return fs::path(job_folder(dir)) / "failed" / (file.substr(0, file.size() - 5) + ".txt");
}

}  // namespace

Shard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  Shard shard;
  auto number = [&](std::string_view part, size_t& out) {
    const auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), out);
    return !part.empty() && ec == std::errc() && ptr == part.data() + part.size();
  };
  const std::string_view view(text);
  if (slash == std::string::npos || !number(view.substr(0, slash), shard.index) ||
      !number(view.substr(slash + 1), shard.count) || shard.count == 0 ||
      shard.index >= shard.count)
    throw InputError(fmt::format("--shard {}: expected I/N with 0 <= I < N (e.g. 0/4)",
                                 printable_excerpt(text, 40)));
  return shard;
}

std::vector<size_t> shard_points(size_t point_count, const Shard& shard) {
  std::vector<size_t> out;
  for (size_t i = shard.index; i < point_count; i += shard.count) out.push_back(i);
  return out;
}

std::string job_folder(const std::string& dir) {
  return (fs::path(dir) / "job").string();
}

void write_job_plan(const std::string& dir, const SweepPlan& plan) {
  const fs::path path = fs::path(job_folder(dir)) / "plan.json";
  const std::string text = plan_text(plan);
  if (fs::exists(path)) {
    if (read_text(path) != text)
      throw InputError(fmt::format(
          "{}: holds a different sweep (or another servesim version's); give another -o folder",
          path.string()));
    return;
  }
  fs::create_directories(path.parent_path());
  write_shared_file(path, text);
}

SweepPlan read_job_plan(const std::string& dir) {
  const fs::path path = fs::path(job_folder(dir)) / "plan.json";
  if (!fs::exists(path))
    throw InputError(fmt::format("{}: no sweep job here (missing {})", dir, path.string()));
  const std::string where = path.string();
  try {
    const auto doc = nlohmann::ordered_json::parse(read_text(path));
    const std::string version = doc.at(kPlanKey).at("version").get<std::string>();
    if (version != SERVESIM_VERSION)
      throw InputError(
          fmt::format("{}: written by servesim {}, this is {}", where, version, SERVESIM_VERSION));
    SweepPlan plan;
    plan.command_line = doc.at("command_line").get<std::string>();
    plan.scenario_label = doc.at("scenario").get<std::string>();
    plan.base_dir = doc.at("base_dir").get<std::string>();
    plan.overrides = doc.at("overrides").get<std::vector<std::string>>();
    if (!doc.at("seed").is_null()) plan.seed = doc.at("seed").get<uint64_t>();
    for (const auto& axis : doc.at("axes"))
      plan.axes.push_back({axis.at("pointer").get<std::string>(),
                           axis.at("values").get<std::vector<std::string>>()});
    plan.scenario = nlohmann::json::parse(doc.at("scenario_document").dump());
    // The point list is what the plan expands to; anything else is a hand edit or damage.
    if (plan.axes.empty() || plan_text(plan) != read_text(path))
      throw InputError(fmt::format("{}: inconsistent plan (edited by hand?)", where));
    return plan;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: not a sweep plan: {}", where, e.what()));
  }
}

ShardReport run_shard(const std::string& dir, const SweepPlan& plan, const Shard& shard,
                      int threads, ProgressBar* progress) {
  const ScenarioSource source(plan.scenario, plan.scenario_label, plan.base_dir);
  std::vector<size_t> todo;
  ShardReport report;
  for (size_t i : shard_points(plan.point_count(), shard)) {
    if (fs::exists(fs::path(dir) / plan.point_file(i)))
      ++report.already_done;
    else
      todo.push_back(i);
  }
  fs::create_directories(fs::path(job_folder(dir)) / "failed");
  std::vector<char> failed(todo.size(), 0);
  parallel_for(
      todo.size(), threads,
      [&](size_t k) {
        const size_t i = todo[k];
        const fs::path note = failure_note(dir, plan, i);
        try {
          const std::string text = run_sweep_point(plan, source, i);
          write_file_atomically((fs::path(dir) / plan.point_file(i)).string(), text);
          std::error_code ignored;
          fs::remove(note, ignored);
        } catch (const std::exception& e) {
          failed[k] = 1;
          write_file_atomically(note.string(), printable_excerpt(e.what(), 280) + "\n");
        }
      },
      [&](size_t done) {
        if (progress)
          progress->update_steps(static_cast<int64_t>(done), static_cast<int64_t>(todo.size()),
                                 "points");
      });
  report.run = todo.size();
  for (char f : failed) report.failed += f;
  return report;
}

std::vector<PointStatus> point_statuses(const std::string& dir, const SweepPlan& plan) {
  std::vector<PointStatus> out(plan.point_count());
  for (size_t i = 0; i < out.size(); ++i) {
    if (fs::exists(fs::path(dir) / plan.point_file(i))) {
      out[i].state = PointState::kDone;
    } else if (const fs::path note = failure_note(dir, plan, i); fs::exists(note)) {
      out[i].state = PointState::kFailed;
      out[i].failure = read_text(note);
      if (!out[i].failure.empty() && out[i].failure.back() == '\n') out[i].failure.pop_back();
    }
  }
  return out;
}

std::optional<nlohmann::ordered_json> collect_sweep(
    const std::string& dir, const SweepPlan& plan,
    const std::function<std::string(size_t)>& missing_reason) {
  const std::vector<PointStatus> statuses = point_statuses(dir, plan);
  const fs::path missing_path = fs::path(dir) / "missing.json";
  nlohmann::ordered_json missing = nlohmann::ordered_json::array();
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (statuses[i].state == PointState::kDone) continue;
    nlohmann::ordered_json entry;
    entry["index"] = i;
    entry["file"] = plan.point_file(i);
    entry["set"] = plan.point_overrides(i);
    entry["reason"] = statuses[i].state == PointState::kFailed ? "failed: " + statuses[i].failure
                      : missing_reason                         ? missing_reason(i)
                                                               : std::string("no result");
    missing.push_back(std::move(entry));
  }
  std::error_code ignored;
  if (!missing.empty()) {
    fs::remove(fs::path(dir) / "sweep.json", ignored);
    fs::remove(fs::path(dir) / "sweep.csv", ignored);
    nlohmann::ordered_json doc;
    doc["servesim_sweep_missing"] = {{"points", plan.point_count()}, {"missing", missing.size()}};
    doc["missing"] = std::move(missing);
    write_file_atomically(missing_path.string(), doc.dump(1) + "\n");
    return std::nullopt;
  }
  std::vector<PointRecord> records(plan.point_count());
  parallel_for(records.size(), 0, [&](size_t i) {
    const fs::path file = fs::path(dir) / plan.point_file(i);
    records[i] = point_record(read_text(file), file.string());
  });
  nlohmann::ordered_json table = sweep_table(plan, std::move(records));
  write_sweep_table(dir, table);
  fs::remove(missing_path, ignored);
  return table;
}

}  // namespace servesim

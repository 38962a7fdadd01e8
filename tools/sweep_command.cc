#include "tools/sweep_command.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "sim/error.h"
#include "tools/progress.h"
#include "tools/sweep_job.h"

namespace servesim {
namespace {

namespace fs = std::filesystem;

/// True when `dir` holds anything besides a job/ folder (which concurrent shards create).
bool has_other_files(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().filename() != "job") return true;
  return false;
}

/// Why point `index` has no result, from the queue: its task is queued, or it ended without one.
std::string queue_reason(size_t index, size_t task_count, const std::map<size_t, char>& queued) {
  const size_t task = slurm_task_of(index, task_count);
  const auto it = queued.find(task);
  if (it == queued.end())
    return fmt::format("task {} ended without a result (preempted, timed out or killed)", task);
  return fmt::format("task {} {}", task, it->second == 'R' ? "running" : "pending");
}

}  // namespace

SweepCommand::SweepCommand(CLI::App& app) {
  cmd = app.add_subcommand(
      "sweep",
      "Run a grid of --set values on parallel threads: one result per point plus a combined "
      "table (sweep.csv, sweep.json); or as shards (--shard) or a Slurm job array (--slurm)");
  // Defined when the command line names the command: other commands do not build them.
  cmd->preparse_callback([this](size_t) { define_options(); });
}

void SweepCommand::define_options() {
  cmd->add_option("scenario", options.scenario_path, "Scenario JSON file")
      ->check(CLI::ExistingFile);
  cmd->add_option("--grid", grids,
                  "An axis: /json/pointer=V1,V2,... (values parsed like --set; commas inside "
                  "[] {} or quotes do not split); repeatable, the first varies slowest")
      ->take_all();
  cmd->add_option("--set", options.overrides, "Override for every point: /json/pointer=VALUE")
      ->take_all();
  cmd->add_option("--seed", options.seed, "Override the scenario's /seed for every point");
  cmd->add_option("-j,--jobs", options.threads,
                  "Points run at once (default 0: one per CPU core); results do not depend on it");
  cmd->add_option("-o,--output-dir", options.output_dir,
                  "Folder for point_NNN.json, sweep.json and sweep.csv (created if missing)");
  cmd->add_flag("-q,--quiet", quiet, "Print neither the table nor the progress bar");
  auto* shard_opt = cmd->add_option(
      "--shard", shard,
      "Run only shard I of N (points i with i % N == I, 0 <= I < N) into -o, for any scheduler; "
      "then `servesim sweep collect DIR`");
  auto* slurm_flag = cmd->add_flag(
      "--slurm", slurm,
      "Write a job directory at -o and submit it with sbatch as a job array; prints the job id");
  slurm_flag->excludes(shard_opt);
  cmd->add_option("--partition", slurm_options.partition, "Slurm partition (sbatch -p)")
      ->needs(slurm_flag);
  cmd->add_option("--time", slurm_options.time_limit, "Time limit per array task (sbatch --time)")
      ->needs(slurm_flag);
  cmd->add_option("--array-parallel", slurm_options.array_parallel,
                  "Run at most N array tasks at once (sbatch --array=...%N)")
      ->check(CLI::NonNegativeNumber)
      ->needs(slurm_flag);
  cmd->add_option("--points-per-task", slurm_options.points_per_task,
                  "Points per array task (default: as few as keep the array within 1000 tasks)")
      ->needs(slurm_flag);
  cmd->add_flag("--dry-run", dry_run, "Write the job directory but do not submit it")
      ->needs(slurm_flag);
  options.threads = 0;

  collect_cmd = cmd->add_subcommand(
      "collect",
      "Merge a job directory's results into sweep.json and sweep.csv, as a local sweep writes "
      "them; with points missing, list them in DIR/missing.json and exit 1");
  collect_cmd->add_option("dir", job_dir, "Sweep job directory (-o of the sweep)")->required();
  collect_cmd->add_flag("--wait", wait, "First wait until no task of the Slurm job is queued");
  collect_cmd->add_option("--poll-s", poll_interval_s, "Seconds between squeue polls (--wait)")
      ->check(CLI::Range(0.1, 3600.0));
  collect_cmd->add_flag("-q,--quiet", quiet, "Do not print the table");

  resume_cmd = cmd->add_subcommand(
      "resume", "Submit again the array tasks whose points have no result (failed or lost)");
  resume_cmd->add_option("dir", job_dir, "Slurm sweep job directory")->required();
  resume_cmd->add_flag("--dry-run", dry_run, "Print the sbatch command only");

  status_cmd = cmd->add_subcommand("status",
                                   "Count a job directory's points: done, running, "
                                   "pending and failed");
  status_cmd->add_option("dir", job_dir, "Sweep job directory")->required();

  task_cmd = cmd->add_subcommand(
      "task", "Run one shard of a job directory's points (what each Slurm array task runs)");
  task_cmd->add_option("dir", job_dir, "Sweep job directory")->required();
  task_cmd->add_option("--shard", shard, "I/N: the points i with i % N == I")->required();
  task_cmd->add_option("-j,--jobs", options.threads, "Points run at once (default 1)");
}

bool SweepCommand::parsed() const {
  return cmd->parsed();
}

int SweepCommand::run() {
  if (collect_cmd->parsed()) return collect();
  if (resume_cmd->parsed()) return resume();
  if (status_cmd->parsed()) return status();
  if (task_cmd->parsed()) return task();
  return run_grid();
}

int SweepCommand::run_grid() {
  if (options.scenario_path.empty())
    throw InputError("sweep: give a scenario file (or collect|resume|status DIR)");
  if (grids.empty()) throw InputError("sweep: give at least one --grid /pointer=V1,V2");
  if (options.output_dir.empty()) throw InputError("sweep: give an output folder with -o DIR");
  options.axes.clear();
  for (const auto& g : grids) options.axes.push_back(parse_grid(g));
  if (slurm) return submit_to_slurm();
  if (!shard.empty()) return run_one_shard();

  ProgressBar bar(progress_wanted(quiet), "servesim sweep");
  const auto table = run_sweep(options, &bar);
  bar.finish();
  if (table.contains("failed")) {
    // Every failed point, one line each; exit 1 as for a regression: the run was valid, the
    // sweep is not whole.
    for (const auto& f : table["failed"])
      fmt::print(stderr, "point {} ({}): {}\n", f["index"].get<size_t>(),
                 fmt::join(f["set"].get<std::vector<std::string>>(), " "),
                 f["error"].get<std::string>());
    fmt::print(stderr,
               "{} of {} points failed (listed in {}/failed.json); no sweep table written\n",
               table["failed"].size(), table["point_count"].get<size_t>(), options.output_dir);
    return 1;
  }
  if (!quiet) {
    fmt::print("{}", sweep_text_table(table));
    fmt::print("{} points in {} (sweep.csv, sweep.json, point_*.json)\n", table["points"].size(),
               options.output_dir);
  }
  return 0;
}

int SweepCommand::submit_to_slurm() {
  const std::string& dir = options.output_dir;
  if (fs::exists(dir) && !fs::is_empty(dir))
    throw InputError(
        fmt::format("-o {}: not empty; a Slurm sweep needs a new folder "
                    "(`servesim sweep resume {}` reruns a job's missing points)",
                    dir, dir));
  const SweepPlan plan = plan_sweep(options);
  write_job_plan(dir, plan);
  prepare_slurm_job(dir, plan, slurm_options);
  const size_t tasks = slurm_task_count(dir);
  std::vector<size_t> all(tasks);
  for (size_t t = 0; t < tasks; ++t) all[t] = t;
  Submission s;
  try {
    s = submit_tasks(dir, all, dry_run);
  } catch (const InputError& e) {
    throw InputError(
        fmt::format("{}; the job is written, submit it later with: servesim sweep "
                    "resume {}",
                    e.what(), dir));
  }
  if (dry_run) {
    fmt::print("wrote {} ({} points in {} array tasks); submit with: servesim sweep resume {}\n",
               (fs::path(job_folder(dir)) / "array.sbatch").string(), plan.point_count(), tasks,
               dir);
    return 0;
  }
  fmt::print("Submitted job {}: {} points in {} array tasks ({})\n", s.job_id, plan.point_count(),
             tasks, dir);
  fmt::print("progress: servesim sweep status {}; merge: servesim sweep collect {} --wait\n", dir,
             dir);
  return 0;
}

int SweepCommand::run_one_shard() {
  const std::string& dir = options.output_dir;
  const Shard part = parse_shard(shard);
  const SweepPlan plan = plan_sweep(options);
  if (!fs::exists(fs::path(job_folder(dir)) / "plan.json") && fs::exists(dir) &&
      has_other_files(dir))
    throw InputError(fmt::format("-o {}: holds files but no sweep plan; give a new folder", dir));
  write_job_plan(dir, plan);
  ProgressBar bar(progress_wanted(quiet), "servesim sweep");
  const ShardReport report = run_shard(dir, plan, part, options.threads, &bar);
  bar.finish();
  if (!quiet)
    fmt::print(
        "shard {}: {} points run ({} failed), {} already done; when every shard is "
        "done: servesim sweep collect {}\n",
        shard, report.run, report.failed, report.already_done, dir);
  return report.failed > 0 ? 1 : 0;
}

int SweepCommand::task() {
  const SweepPlan plan = read_job_plan(job_dir);
  const Shard part = parse_shard(shard);
  const ShardReport report = run_shard(job_dir, plan, part, std::max(options.threads, 1), nullptr);
  fmt::print("servesim sweep task {}: {} points run ({} failed), {} already done\n", shard,
             report.run, report.failed, report.already_done);
  return report.failed > 0 ? 1 : 0;
}

int SweepCommand::collect() {
  const SweepPlan plan = read_job_plan(job_dir);
  const bool on_slurm = is_submitted_slurm_job(job_dir);
  if (wait && !on_slurm)
    throw InputError(fmt::format("{}: --wait needs a submitted Slurm job", job_dir));
  if (wait)
    while (!queued_tasks(job_dir).empty())
      std::this_thread::sleep_for(std::chrono::duration<double>(poll_interval_s));
  std::function<std::string(size_t)> reason;
  std::map<size_t, char> queued;
  size_t task_count = 0;
  if (on_slurm) {
    task_count = slurm_task_count(job_dir);
    try {
      queued = queued_tasks(job_dir);
      reason = [&](size_t i) { return queue_reason(i, task_count, queued); };
    } catch (const InputError&) {
      // Collecting away from the cluster: the points are missing all the same.
    }
  }
  const auto table = collect_sweep(job_dir, plan, reason);
  if (!table) {
    const auto missing = nlohmann::json::parse(
        std::ifstream(fs::path(job_dir) / "missing.json"))["servesim_sweep_missing"]["missing"];
    fmt::print(stderr,
               "servesim sweep collect: {} of {} points have no result, listed in {}; no "
               "sweep.json written{}\n",
               missing.get<size_t>(), plan.point_count(),
               (fs::path(job_dir) / "missing.json").string(),
               on_slurm ? fmt::format(" (rerun them: servesim sweep resume {})", job_dir) : "");
    return 1;
  }
  if (!quiet) {
    fmt::print("{}", sweep_text_table(*table));
    fmt::print("{} points merged into {} (sweep.csv, sweep.json)\n", plan.point_count(), job_dir);
  }
  return 0;
}

int SweepCommand::resume() {
  const SweepPlan plan = read_job_plan(job_dir);
  if (!is_slurm_job(job_dir))
    throw InputError(
        fmt::format("{}: not a Slurm job (no job/slurm.json); rerun its shards, or "
                    "run every missing point here: servesim sweep task {} --shard 0/1",
                    job_dir, job_dir));
  const size_t task_count = slurm_task_count(job_dir);
  const std::map<size_t, char> queued = queued_tasks(job_dir);
  const std::vector<PointStatus> statuses = point_statuses(job_dir, plan);
  std::set<size_t> tasks;
  size_t missing = 0, missing_queued = 0;
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (statuses[i].state == PointState::kDone) continue;
    ++missing;
    const size_t task = slurm_task_of(i, task_count);
    if (queued.count(task))
      ++missing_queued;
    else
      tasks.insert(task);
  }
  if (tasks.empty()) {
    fmt::print("{}: {} of {} points done, {} more in tasks still queued; nothing to submit\n",
               job_dir, plan.point_count() - missing, plan.point_count(), missing_queued);
    return 0;
  }
  const Submission s = submit_tasks(job_dir, {tasks.begin(), tasks.end()}, dry_run);
  if (dry_run) {
    fmt::print("{}\n", s.command);
    return 0;
  }
  fmt::print("Submitted job {}: array tasks {} for {} points without a result ({})\n", s.job_id,
             s.array_spec, missing - missing_queued, job_dir);
  return 0;
}

int SweepCommand::status() {
  const SweepPlan plan = read_job_plan(job_dir);
  const std::vector<PointStatus> statuses = point_statuses(job_dir, plan);
  const bool on_slurm = is_submitted_slurm_job(job_dir);
  std::map<size_t, char> queued;
  size_t task_count = 1;
  std::string queue_note;
  if (on_slurm) {
    task_count = slurm_task_count(job_dir);
    try {
      queued = queued_tasks(job_dir);
    } catch (const InputError& e) {
      queue_note = fmt::format(" (no queue information: {})", e.what());
    }
  }
  size_t done = 0, running = 0, pending = 0, failed = 0, missing = 0;
  std::vector<std::string> failures;
  for (size_t i = 0; i < statuses.size(); ++i) {
    const auto it = queued.find(slurm_task_of(i, task_count));
    if (statuses[i].state == PointState::kDone) {
      ++done;
    } else if (on_slurm && it != queued.end()) {
      ++(it->second == 'R' ? running : pending);
    } else if (statuses[i].state == PointState::kFailed) {
      ++failed;
      failures.push_back(fmt::format("{}: {}", plan.point_file(i), statuses[i].failure));
    } else if (on_slurm && queue_note.empty()) {
      ++failed;
      failures.push_back(
          fmt::format("{}: {}", plan.point_file(i), queue_reason(i, task_count, queued)));
    } else {
      ++missing;
    }
  }
  fmt::print("{} points: {} done, {} running, {} pending, {} failed", plan.point_count(), done,
             running, pending, failed);
  if (missing > 0) fmt::print(", {} without a result", missing);
  fmt::print("{}\n", queue_note);
  constexpr size_t kListed = 10;
  for (size_t k = 0; k < std::min(failures.size(), kListed); ++k) fmt::print("  {}\n", failures[k]);
  if (failures.size() > kListed) fmt::print("  ... and {} more\n", failures.size() - kListed);
  return 0;
}

}  // namespace servesim

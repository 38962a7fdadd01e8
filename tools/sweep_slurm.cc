#include "tools/sweep_slurm.h"

#include <fmt/format.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "sim/error.h"
#include "sim/json_parse.h"
#include "tools/output_file.h"
#include "tools/sweep_job.h"

namespace servesim {
namespace {

namespace fs = std::filesystem;

// Slurm's default MaxArraySize is 1001 (task ids 0..1000).
constexpr size_t kDefaultMaxTasks = 1000;

fs::path slurm_json_path(const std::string& dir) {
  return fs::path(job_folder(dir)) / "slurm.json";
}

nlohmann::ordered_json read_slurm_json(const std::string& dir) {
  const fs::path path = slurm_json_path(dir);
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw InputError(fmt::format("{}: not a Slurm sweep job (missing {})", dir, path.string()));
  try {
    return nlohmann::ordered_json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: {}", path.string(), e.what()));
  }
}

/// Runs `command` through the shell; returns its exit status, standard output and error in
/// `output`.
int run_shell(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) throw InputError(fmt::format("cannot run {}", command));
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output->append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string first_line(const std::string& text) {
  return printable_excerpt(text.substr(0, text.find('\n')), 200);
}

/// "0-3,7,9-10" from sorted task ids, with "%N" to run at most N at once.
std::string array_spec(const std::vector<size_t>& tasks, int array_parallel) {
  std::string out;
  for (size_t k = 0; k < tasks.size();) {
    size_t end = k;
    while (end + 1 < tasks.size() && tasks[end + 1] == tasks[end] + 1) ++end;
    if (!out.empty()) out += ",";
    out += end == k ? fmt::format("{}", tasks[k]) : fmt::format("{}-{}", tasks[k], tasks[end]);
    k = end + 1;
  }
  if (array_parallel > 0) out += fmt::format("%{}", array_parallel);
  return out;
}

std::string current_user() {
  const passwd* entry = getpwuid(getuid());
  return entry ? entry->pw_name : std::to_string(getuid());
}

}  // namespace

void prepare_slurm_job(const std::string& dir, const SweepPlan& plan, const SlurmOptions& options) {
  const size_t points = plan.point_count();
  const size_t per_task = options.points_per_task > 0
                              ? options.points_per_task
                              : (points + kDefaultMaxTasks - 1) / kDefaultMaxTasks;
  const size_t tasks = (points + per_task - 1) / per_task;
  const fs::path job = job_folder(dir);
  fs::create_directories(job / "logs");
  // The binary the tasks run: this one, copied, so results do not change under a rebuild.
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw InputError(fmt::format("cannot find the servesim binary: {}", ec.message()));
  fs::copy_file(self, job / "servesim.tmp", fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::rename(job / "servesim.tmp", job / "servesim", ec);
  if (ec)
    throw InputError(
        fmt::format("{}: cannot write: {}", (job / "servesim").string(), ec.message()));

  std::string script = "#!/bin/sh\n";
  script += fmt::format(
      "# servesim sweep of {} points as a job array of {} tasks: task T runs the points i with\n"
      "# i % {} == T. Submitted from the sweep folder (the one holding job/), which every path\n"
      "# is relative to: `servesim sweep resume DIR` submits the tasks whose points have no "
      "result.\n",
      points, tasks, tasks);
  script += "#SBATCH --job-name=servesim-sweep\n";
  script += "#SBATCH --output=job/logs/task_%a.log\n";
  script += "#SBATCH --open-mode=append\n";
  if (!options.partition.empty()) script += "#SBATCH --partition=" + options.partition + "\n";
  if (!options.time_limit.empty()) script += "#SBATCH --time=" + options.time_limit + "\n";
  script += fmt::format(
      "exec job/servesim sweep task . --shard \"$SLURM_ARRAY_TASK_ID/{}\" -j "
      "\"${{SLURM_CPUS_PER_TASK:-1}}\"\n",
      tasks);
  write_file_atomically((job / "array.sbatch").string(), script);

  nlohmann::ordered_json record;
  record["tasks"] = tasks;
  record["points_per_task"] = per_task;
  record["array_parallel"] = options.array_parallel;
  record["submissions"] = nlohmann::ordered_json::array();
  write_file_atomically(slurm_json_path(dir).string(), record.dump(1) + "\n");
}

bool is_slurm_job(const std::string& dir) {
  return fs::exists(slurm_json_path(dir));
}

bool is_submitted_slurm_job(const std::string& dir) {
  if (!is_slurm_job(dir)) return false;
  const auto record = read_slurm_json(dir);
  return record.contains("submissions") && !record.at("submissions").empty();
}

size_t slurm_task_count(const std::string& dir) {
  const auto record = read_slurm_json(dir);
  try {
    return record.at("tasks").get<size_t>();
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: {}", slurm_json_path(dir).string(), e.what()));
  }
}

Submission submit_tasks(const std::string& dir, const std::vector<size_t>& tasks, bool dry_run) {
  auto record = read_slurm_json(dir);
  Submission out;
  out.array_spec = array_spec(tasks, record.value("array_parallel", 0));
  out.command =
      fmt::format("cd {} && sbatch --parsable --array={} job/array.sbatch",
                  shell_quote(fs::absolute(dir).lexically_normal().string()), out.array_spec);
  if (dry_run) return out;
  std::string output;
  const int status = run_shell(out.command, &output);
  // --parsable prints "JOBID" or "JOBID;CLUSTER".
  const std::string id = output.substr(0, output.find_first_of(";\n"));
  if (status != 0 || id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw InputError(fmt::format("sbatch failed (exit {}): {}", status,
                                 output.empty() ? "no output" : first_line(output)));
  out.job_id = id;
  record["submissions"].push_back({{"job_id", out.job_id}, {"array", out.array_spec}});
  write_file_atomically(slurm_json_path(dir).string(), record.dump(1) + "\n");
  return out;
}

std::map<size_t, char> queued_tasks(const std::string& dir) {
  const auto record = read_slurm_json(dir);
  std::set<std::string> ours;
  for (const auto& s : record.at("submissions")) ours.insert(s.at("job_id").get<std::string>());
  std::map<size_t, char> out;
  if (ours.empty()) return out;
  // By user, not by job id: squeue rejects ids of jobs it has already forgotten.
  std::string output;
  const int status = run_shell(
      fmt::format("squeue --noheader --array --user={} --format='%F %K %t'", current_user()),
      &output);
  if (status != 0)
    throw InputError(fmt::format("squeue failed (exit {}): {}", status, first_line(output)));
  std::istringstream lines(output);
  std::string job_id, task, state;
  while (lines >> job_id >> task >> state) {
    size_t index = 0;
    if (!ours.count(job_id) || std::sscanf(task.c_str(), "%zu", &index) != 1) continue;
    const bool running = state == "R" || state == "CG" || state == "CF";
    out[index] = running ? 'R' : 'P';
  }
  return out;
}

}  // namespace servesim

#pragma once
/// A sweep's job directory (tools/sweep_job.h) run as a Slurm job array. From DIR, array task T
/// of TASKS runs `job/servesim sweep task . --shard T/TASKS`: job/servesim is a copy of the
/// binary that wrote the job, so a rebuild while the job waits changes nothing. DIR/job/slurm.json
/// records the task count, the sbatch options and the id of every submission.

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "tools/sweep.h"

namespace servesim {

struct SlurmOptions {
  std::string partition;       ///< empty: the cluster's default
  std::string time_limit;      ///< sbatch --time; empty: the partition's default
  int array_parallel = 0;      ///< at most this many tasks at once (0: no limit)
  size_t points_per_task = 0;  ///< 0: enough that the array has at most 1000 tasks
};

/// Writes job/array.sbatch, job/servesim and job/slurm.json into DIR (its plan already there).
void prepare_slurm_job(const std::string& dir, const SweepPlan& plan, const SlurmOptions& options);

/// True when DIR holds a Slurm job (job/slurm.json).
bool is_slurm_job(const std::string& dir);

/// True when DIR holds a Slurm job that was submitted at least once (not only a dry run).
bool is_submitted_slurm_job(const std::string& dir);

/// The job array's task count, and the task that runs point `index`.
size_t slurm_task_count(const std::string& dir);
inline size_t slurm_task_of(size_t index, size_t task_count) {
  return index % task_count;
}

struct Submission {
  std::string job_id;      ///< empty on a dry run
  std::string array_spec;  ///< sbatch --array, e.g. "0-19%4" or "3,7"
  std::string command;     ///< the shell command, run from DIR
};

/// Submits the array tasks `tasks` (sorted) with sbatch from DIR and records the job id in
/// job/slurm.json; with `dry_run` only returns the command. Errors carry sbatch's message.
Submission submit_tasks(const std::string& dir, const std::vector<size_t>& tasks, bool dry_run);

/// Tasks of this directory's submissions that squeue still lists: task -> 'R' (running or
/// finishing) or 'P' (pending, held or suspended). Throws when squeue cannot be run.
std::map<size_t, char> queued_tasks(const std::string& dir);

}  // namespace servesim

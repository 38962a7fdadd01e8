#pragma once
/// `servesim sweep` on the command line: the local sweep, its shards (--shard I/N), a Slurm job
/// array (--slurm) and the job directory's subcommands collect, resume, status and task.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "tools/sweep.h"
#include "tools/sweep_slurm.h"

namespace CLI {
class App;
}  // namespace CLI

namespace servesim {

struct SweepCommand {
  explicit SweepCommand(CLI::App& app);
  bool parsed() const;
  /// The exit status: 0 done, 1 some points failed or are missing, 2 bad input.
  int run();

  CLI::App* cmd;
  CLI::App* collect_cmd;
  CLI::App* resume_cmd;
  CLI::App* status_cmd;
  CLI::App* task_cmd;
  SweepOptions options;
  std::vector<std::string> grids;
  bool quiet = false;
  std::string shard;
  bool slurm = false;
  SlurmOptions slurm_options;
  bool dry_run = false;
  std::string job_dir;  ///< collect, resume, status, task
  bool wait = false;
  double poll_interval_s = 5.0;

 private:
  int run_grid();
  int submit_to_slurm();
  int run_one_shard();
  int collect();
  int resume();
  int status();
  int task();
};

}  // namespace servesim

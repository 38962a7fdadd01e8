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
  /// Adds the subcommand; its options are defined when the command line names it.
  explicit SweepCommand(CLI::App& app);
  SweepCommand(const SweepCommand&) = delete;  // the subcommand's callbacks point here
  SweepCommand& operator=(const SweepCommand&) = delete;
  bool parsed() const;
  /// The exit status: 0 done, 1 some points failed or are missing, 2 bad input.
  int run();

  CLI::App* cmd;
  CLI::App* collect_cmd = nullptr;  ///< these four once the options are defined
  CLI::App* resume_cmd = nullptr;
  CLI::App* status_cmd = nullptr;
  CLI::App* task_cmd = nullptr;
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
  void define_options();
  int run_grid();
  int submit_to_slurm();
  int run_one_shard();
  int collect();
  int resume();
  int status();
  int task();
};

}  // namespace servesim

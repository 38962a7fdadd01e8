#pragma once
/// A sweep's job directory, the unit that shards and job-array tasks share. DIR/job/plan.json
/// holds the expanded plan (the scenario document itself, the axes and every point's --set
/// list); each point's result is DIR/point_NNN.json, as a local sweep writes it; a point that
/// failed leaves its one-line error in DIR/job/failed/point_NNN.txt. Paths inside are relative
/// to DIR, except the scenario's base folder (absolute), so DIR may sit on a shared filesystem.

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tools/sweep.h"

namespace servesim {

class ProgressBar;

/// Shard `index` of `count` (0 <= index < count).
struct Shard {
  size_t index = 0;
  size_t count = 1;
};

/// Parses "I/N"; errors name the option.
Shard parse_shard(const std::string& text);

/// Points i with i % count == index: strided, so every shard gets a mix of each axis's values
/// (and of their run times).
std::vector<size_t> shard_points(size_t point_count, const Shard& shard);

/// DIR/job, where the plan, failure notes and scheduler files live.
std::string job_folder(const std::string& dir);

/// Writes DIR/job/plan.json, or checks that the one already there is the same sweep.
void write_job_plan(const std::string& dir, const SweepPlan& plan);

/// Reads DIR/job/plan.json; errors name the file.
SweepPlan read_job_plan(const std::string& dir);

struct ShardReport {
  size_t run = 0;
  size_t already_done = 0;
  size_t failed = 0;
};

/// Runs the shard's points that have no result yet on `threads` threads. A point that throws is
/// noted in job/failed/ and the other points still run.
ShardReport run_shard(const std::string& dir, const SweepPlan& plan, const Shard& shard,
                      int threads, ProgressBar* progress);

enum class PointState { kDone, kFailed, kMissing };

struct PointStatus {
  PointState state = PointState::kMissing;
  std::string failure;  ///< the error a failed point left
};

/// Each point's state from the files in DIR.
std::vector<PointStatus> point_statuses(const std::string& dir, const SweepPlan& plan);

/// With every point done: merges the results into sweep.json and sweep.csv and returns the
/// table. Otherwise returns nullopt, writes DIR/missing.json (index, file, values and reason of
/// each missing point) and removes any sweep.json and sweep.csv, so a partial table never
/// stands in for the whole. `missing_reason(i)` says why a point with neither a result nor a
/// failure note is missing (say, its task is still queued); by default "no result".
std::optional<nlohmann::ordered_json> collect_sweep(
    const std::string& dir, const SweepPlan& plan,
    const std::function<std::string(size_t)>& missing_reason = {});

}  // namespace servesim

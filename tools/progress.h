#pragma once
/// A progress line on standard error for long runs: simulated time, requests done and an ETA.
/// Only drawn when stderr is a terminal, so logs and CI output stay clean; redrawn at most a few
/// times a second whatever the caller's update rate, so the run's hook can stay cheap.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace servesim {

struct RunProgress;  // run/run.h

/// What a run is expected to amount to, for the percentage and ETA; zero means unknown.
struct RunSizeHint {
  int64_t requests = 0;
  double simulated_s = 0;
};

/// Estimates the run's size from a scenario (after --set overrides): /workload/requests,
/// /workload/max_requests, sessions x turns, duration_s, or the number of rows of a trace file
/// (`base_dir` resolves its path). Never throws: a scenario it cannot read gives "unknown".
RunSizeHint estimate_run_size(const nlohmann::json& scenario, const std::string& base_dir);

/// The same for a scenario file and --set overrides (read again: only call it when drawing).
RunSizeHint estimate_run_size_file(const std::string& path,
                                   const std::vector<std::string>& overrides);

/// True when progress should be drawn: not --quiet and stderr is a terminal.
bool progress_wanted(bool quiet);

class ProgressBar {
 public:
  /// `enabled` false makes every call a no-op. `out` is where the line goes (stderr normally;
  /// tests pass a file). `min_redraw_s` throttles redraws.
  ProgressBar(bool enabled, std::string label, std::FILE* out = stderr, double min_redraw_s = 0.1);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// A simulation's progress against `hint`.
  void update(const RunProgress& p, const RunSizeHint& hint);
  /// Generic progress: `done` of `total` steps (sweep points, replications), with a note;
  /// total <= 0 means open-ended (capacity search): a count, no bar or ETA.
  void update_steps(int64_t done, int64_t total, const std::string& note = "");
  /// Clears the line. Called by the destructor too.
  void finish();

  bool enabled() const { return enabled_; }

 private:
  void draw(double fraction, const std::string& text, bool force);

  bool enabled_;
  std::string label_;
  std::FILE* out_;
  double min_redraw_s_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  bool drawn_ = false;
};

/// "1h02m", "3m05s", "12s": an ETA a person reads at a glance.
std::string format_duration_s(double seconds);

}  // namespace servesim

#include "tools/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "run/run.h"
#include "run/scenario_file.h"

namespace servesim {
namespace {

int64_t count_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return 0;
  int64_t lines = 0;
  char buffer[1 << 16];
  char last = '\n';
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    lines += std::count(buffer, buffer + in.gcount(), '\n');
    last = buffer[in.gcount() - 1];
    if (!in) break;
  }
  return lines + (last == '\n' ? 0 : 1);  // a last line without a newline counts too
}

int64_t int_or_zero(const nlohmann::json& o, const char* key) {
  const auto it = o.find(key);
  return it != o.end() && it->is_number() ? it->get<int64_t>() : 0;
}

}  // namespace

RunSizeHint estimate_run_size(const nlohmann::json& scenario, const std::string& base_dir) {
  RunSizeHint hint;
  const auto w = scenario.find("workload");
  if (w == scenario.end() || !w->is_object()) return hint;
  const std::string kind = w->value("kind", std::string());
  if (kind == "sessions") {
    hint.requests = int_or_zero(*w, "sessions") * int_or_zero(*w, "turns");
  } else if (kind == "trace") {
    hint.requests = int_or_zero(*w, "max_requests");
    const auto path = w->find("path");
    if (hint.requests == 0 && path != w->end() && path->is_string()) {
      std::filesystem::path p(path->get<std::string>());
      if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
      const int64_t rows = count_lines(p.string());
      const bool header = w->value("format", std::string()) == "azure_csv";
      hint.requests = std::max<int64_t>(0, rows - (header ? 1 : 0));
    }
  } else {
    hint.requests = int_or_zero(*w, "requests");
  }
  const auto d = w->find("duration_s");
  if (d != w->end() && d->is_number()) hint.simulated_s = d->get<double>();
  return hint;
}

RunSizeHint estimate_run_size_file(const std::string& path,
                                   const std::vector<std::string>& overrides) {
  try {
    nlohmann::json doc = read_json_file(path);
    apply_overrides(doc, overrides);
    const std::string base = std::filesystem::path(path).parent_path().string();
    return estimate_run_size(doc, base.empty() ? "." : base);
  } catch (const std::exception&) {
    return {};  // the run itself reports the error properly
  }
}

bool progress_wanted(bool quiet) {
  return !quiet && isatty(STDERR_FILENO) == 1;
}

std::string format_duration_s(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

ProgressBar::ProgressBar(bool enabled, std::string label, std::FILE* out, double min_redraw_s)
    : enabled_(enabled),
      label_(std::move(label)),
      out_(out),
      min_redraw_s_(min_redraw_s),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  finish();
}

void ProgressBar::update(const RunProgress& p, const RunSizeHint& hint) {
  if (!enabled_) return;
  const uint64_t done = p.completed + p.dropped;
  double fraction = -1;
  if (hint.requests > 0)
    fraction = static_cast<double>(done) / static_cast<double>(hint.requests);
  else if (hint.simulated_s > 0)
    fraction = p.simulated_s / hint.simulated_s;
  std::string text = fmt::format("sim {:.1f} s  requests {}", p.simulated_s, done);
  if (hint.requests > 0) text += fmt::format("/{}", hint.requests);
  draw(std::min(fraction, 1.0), text, false);
}

void ProgressBar::update_steps(int64_t done, int64_t total, const std::string& note) {
  if (!enabled_) return;
  const double fraction = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : -1.0;
  std::string text = total > 0 ? fmt::format("{}/{}", done, total) : fmt::format("{}", done);
  if (!note.empty()) text += "  " + note;
  draw(fraction, text, true);
}

void ProgressBar::draw(double fraction, const std::string& text, bool force) {
  const auto now = std::chrono::steady_clock::now();
  const double since_last_s = std::chrono::duration<double>(now - last_draw_).count();
  if (!force && drawn_ && since_last_s < min_redraw_s_) return;
  last_draw_ = now;
  const double elapsed_s = std::chrono::duration<double>(now - start_).count();
  constexpr int kWidth = 24;
  std::string line = label_.empty() ? "" : label_ + " ";
  if (fraction >= 0) {
    const int filled = static_cast<int>(fraction * kWidth);
    line += fmt::format("[{}{}] {:3.0f}%  ", std::string(static_cast<size_t>(filled), '#'),
                        std::string(static_cast<size_t>(kWidth - filled), '.'), fraction * 100);
  }
  line += text;
  line += fmt::format("  elapsed {}", format_duration_s(elapsed_s));
  if (fraction > 0.01)
    line += fmt::format("  ETA {}", format_duration_s(elapsed_s * (1 - fraction) / fraction));
  // \r and clear-to-end-of-line redraw in place.
  fmt::print(out_, "\r{}\x1b[K", line);
  std::fflush(out_);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (!enabled_ || !drawn_) return;
  fmt::print(out_, "\r\x1b[K");
  std::fflush(out_);
  drawn_ = false;
}

}  // namespace servesim

// Progress on long runs: a hook that never changes the result, a bar drawn only on a terminal.

#include <catch2/catch.hpp>
#include <cstdio>

#include "test_support.h"
#include "tools/progress.h"

using namespace servesim;
using namespace servesim::testing;

TEST_CASE("the progress hook sees the run advance and leaves the result alone",
          "[tools][progress]") {
  const nlohmann::json doc = load_scenario("seed_q11_four_node.json");
  std::vector<RunProgress> seen;
  RunOptions with;
  with.on_progress = [&](const RunProgress& p) { seen.push_back(p); };
  const RunOutput a = run_doc(doc, "q11.json", with);
  const RunOutput b = run_doc(doc, "q11.json", RunOptions{});
  CHECK(a.result.dump() == b.result.dump());
  REQUIRE(seen.size() > 10);
  for (size_t i = 1; i < seen.size(); ++i) {
    CHECK(seen[i].simulated_s >= seen[i - 1].simulated_s);
    CHECK(seen[i].completed >= seen[i - 1].completed);
  }
  CHECK(seen.back().completed + seen.back().dropped > 500);
}

TEST_CASE("run size hints come from the workload", "[tools][progress]") {
  CHECK(estimate_run_size(load_scenario("seed_q11_four_node.json"), ".").requests == 600);
  CHECK(estimate_run_size_file(source_path("scenarios/seed_q11_four_node.json"),
                               {"/workload/requests=42"})
            .requests == 42);
  CHECK(estimate_run_size_file("/nonexistent.json", {}).requests == 0);
  nlohmann::json sessions = {{"workload", {{"kind", "sessions"}, {"sessions", 3}, {"turns", 4}}}};
  CHECK(estimate_run_size(sessions, ".").requests == 12);
}

TEST_CASE("the bar draws progress and an ETA, and clears its line", "[tools][progress]") {
  const std::string path = tmp_path("progress_bar.txt");
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    {
      ProgressBar bar(true, "test", f, 0.0);
      bar.update_steps(1, 4, "points");
      bar.update({12.5, 300, 290, 10}, RunSizeHint{600, 0});
    }
    std::fclose(f);
  }
  const std::string text = read_text(path);
  CHECK(text.find("1/4  points") != std::string::npos);
  CHECK(text.find("25%") != std::string::npos);
  CHECK(text.find("ETA") != std::string::npos);
  CHECK(text.find("sim 12.5 s  requests 300/600") != std::string::npos);
  CHECK(text.find("\r\x1b[K", text.size() - 4) != std::string::npos);  // cleared at the end

  // Disabled: nothing at all.
  std::FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f);
  {
    ProgressBar bar(false, "test", f, 0.0);
    bar.update_steps(1, 4);
  }
  std::fclose(f);
  CHECK(read_text(path).empty());
  CHECK(format_duration_s(5) == "5s");
  CHECK(format_duration_s(125) == "2m05s");
  CHECK(format_duration_s(3720) == "1h02m");
}

TEST_CASE("no progress output when stderr is not a terminal", "[tools][progress]") {
  std::string err;
  REQUIRE(run_cli("run " + source_path("scenarios/seed_q11_four_node.json") + " -o " +
                      tmp_path("progress_q11.json"),
                  &err) == 0);
  CHECK(err.empty());
}

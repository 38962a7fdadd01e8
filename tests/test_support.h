#pragma once
// Shared helpers for the tests: paths, scenario loading, running the CLI.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>

#include "run/run.h"
#include "run/scenario_file.h"

namespace servesim::testing {

inline std::string source_path(const std::string& relative) {
  return std::string(SERVESIM_SOURCE_DIR) + "/" + relative;
}

inline std::string tmp_path(const std::string& name) {
  std::filesystem::create_directories(SERVESIM_TEST_TMP_DIR);
  return std::string(SERVESIM_TEST_TMP_DIR) + "/" + name;
}

inline nlohmann::json load_scenario(const std::string& name) {
  return read_json_file(source_path("scenarios/" + name));
}

/// Runs a scenario document as if it were the shipped file `name` (paths resolve from
/// scenarios/).
inline RunOutput run_doc(const nlohmann::json& doc, const std::string& label = "q11.json",
                         RunOptions options = {}) {
  return run_scenario(doc, label, source_path("scenarios"), options);
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs the servesim binary with `args`; returns the exit status, stderr in `err`.
inline int run_cli(const std::string& args, std::string* err = nullptr) {
  // One file per process: ctest -j runs test cases in parallel processes.
  const std::string err_file = tmp_path("cli_stderr_" + std::to_string(getpid()) + ".txt");
  const std::string cmd = std::string(SERVESIM_BINARY) + " " + args + " >/dev/null 2>" + err_file;
  const int status = std::system(cmd.c_str());
  if (err) *err = read_text(err_file);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// Runs scenarios/closed_loop_h100.json, the held-out benchmark's command form, with `sets`
/// (--set arguments and flags) and returns its result; throws with servesim's error line when
/// the run fails. The result file is named by process: ctest -j runs cases in parallel.
inline nlohmann::json run_benchmark(const std::string& sets) {
  const std::string out = tmp_path("benchmark_" + std::to_string(getpid()) + ".json");
  std::filesystem::remove(out);
  std::string err;
  if (run_cli(
          "run " + source_path("scenarios/closed_loop_h100.json") + " -q -o " + out + " " + sets,
          &err) != 0)
    throw std::runtime_error("servesim run " + sets + ": " + err);
  return nlohmann::json::parse(read_text(out));
}

}  // namespace servesim::testing

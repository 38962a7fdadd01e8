// `cmake --install` puts the binary, the scenarios (with their schemas) and the plotting tool
// in place, and the installed binary runs an installed scenario.

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "test_support.h"
#include "traces/trace_streams.h"

using namespace servesim::testing;
using servesim::read_json_file;
using servesim::resolve_input_path;
using servesim::RunOptions;
using servesim::RunOutput;
using servesim::shared_data_dir;

TEST_CASE("cmake --install puts binary, scenarios and plot tool in place", "[tools][install]") {
  const std::string build_dir = std::filesystem::path(SERVESIM_BINARY).parent_path().string();
  const std::string prefix = tmp_path("install");
  std::filesystem::remove_all(prefix);
  const std::string log = tmp_path("install.log");
  int status = std::system(
      ("cmake --install " + build_dir + " --prefix " + prefix + " >" + log + " 2>&1").c_str());
  INFO(read_text(log));
  REQUIRE(WEXITSTATUS(status) == 0);
  namespace fs = std::filesystem;
  const fs::path bin = fs::path(prefix) / "bin/servesim";
  const fs::path plot = fs::path(prefix) / "share/servesim/plot.py";
  REQUIRE(fs::exists(bin));
  CHECK((fs::status(bin).permissions() & fs::perms::owner_exec) != fs::perms::none);
  REQUIRE(fs::exists(plot));
  CHECK((fs::status(plot).permissions() & fs::perms::owner_exec) != fs::perms::none);
  const fs::path scenarios = fs::path(prefix) / "share/servesim/scenarios";
  CHECK(fs::exists(scenarios / "seed_q11_four_node.json"));
  CHECK(fs::exists(scenarios / "schema/result.schema.json"));
  CHECK(fs::exists(scenarios / "schema/scenario.schema.json"));
  CHECK(fs::exists(scenarios / "schema.md"));

  status = std::system((bin.string() + " run " + (scenarios / "seed_q11_four_node.json").string() +
                        " -q --set /workload/requests=20 -o " + tmp_path("installed_run.json") +
                        " >" + log + " 2>&1")
                           .c_str());
  INFO(read_text(log));
  CHECK(WEXITSTATUS(status) == 0);

  // A trace scenario reads the trace from $SERVESIM_DATA, not from a path relative to the
  // clone, so the installed copy runs too (with the variable set, as an install would have it).
  const std::string trace_run = tmp_path("installed_trace_run.json");
  status =
      std::system(("SERVESIM_DATA=" + std::string(SERVESIM_SHARED_DIR) + "/data " + bin.string() +
                   " run " + (scenarios / "azure_conv_8xh100.json").string() +
                   " -q --set /workload/max_requests=50 -o " + trace_run + " >" + log + " 2>&1")
                      .c_str());
  INFO(read_text(log));
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK(read_json_file(trace_run)["summary"]["completed"] == 50);
}

TEST_CASE("$SERVESIM_DATA paths follow the variable and fail clearly without data",
          "[tools][install]") {
  // Unset: the shared data beside the source tree.
  unsetenv("SERVESIM_DATA");
  CHECK(shared_data_dir() == SERVESIM_DEFAULT_DATA_DIR);
  CHECK(resolve_input_path("/anywhere", "$SERVESIM_DATA/traces/a.csv") ==
        (std::filesystem::path(SERVESIM_DEFAULT_DATA_DIR) / "traces/a.csv")
            .lexically_normal()
            .string());
  // Set: wherever it says; other paths keep resolving against the scenario's folder.
  setenv("SERVESIM_DATA", "/opt/data", 1);
  CHECK(resolve_input_path("/anywhere", "$SERVESIM_DATA/traces/a.csv") == "/opt/data/traces/a.csv");
  CHECK(resolve_input_path("/scen", "../t.csv") == "/t.csv");

  // A copy of a shipped trace scenario far from the clone runs with the variable set...
  const std::string copy = tmp_path("moved_azure.json");
  std::filesystem::copy_file(source_path("scenarios/azure_conv_8xh100.json"), copy,
                             std::filesystem::copy_options::overwrite_existing);
  setenv("SERVESIM_DATA", (std::string(SERVESIM_SHARED_DIR) + "/data").c_str(), 1);
  RunOptions capped;
  capped.overrides = {"/workload/max_requests=20"};
  const RunOutput out = servesim::run_scenario(read_json_file(copy), copy, tmp_path(""), capped);
  CHECK(out.result["summary"]["completed"] == 20);
  // ... and with a folder that does not exist, fails at the path, saying what to set.
  std::string err;
  CHECK(run_cli("run " + copy + " -q --set /workload/max_requests=20 -o " +
                    tmp_path("moved_azure_out.json"),
                &err) == 0);
  CHECK(std::system(("SERVESIM_DATA=/no/such/data " + std::string(SERVESIM_BINARY) + " run " +
                     copy + " -q -o " + tmp_path("moved_azure_out.json") + " 2>" +
                     tmp_path("moved_azure.err"))
                        .c_str()) != 0);
  CHECK(read_text(tmp_path("moved_azure.err")) ==
        "error: " + copy +
            ": /workload/path: the shared data folder /no/such/data does not exist; set "
            "SERVESIM_DATA to the folder that holds traces/ (../shared/data beside a clone)\n");
  unsetenv("SERVESIM_DATA");
}

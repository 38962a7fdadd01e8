// `cmake --install` puts the binary, the scenarios (with their schemas) and the plotting tool
// in place, and the installed binary runs an installed scenario.

#include <catch2/catch.hpp>
#include <filesystem>

#include "test_support.h"

using namespace servesim::testing;

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
}

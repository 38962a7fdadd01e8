// The README's walkthrough quotes what tools/walkthrough.sh prints: every line of its output
// must appear in the README as printed, so a change in a figure fails here until both agree.

#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "test_support.h"

using namespace servesim::testing;

TEST_CASE("the README's four answers are what tools/walkthrough.sh prints",
          "[tools][walkthrough]") {
  const std::string out = tmp_path("walkthrough.txt");
  const std::string cmd = "SERVESIM=" + std::string(SERVESIM_BINARY) + " " +
                          source_path("tools/walkthrough.sh") + " all >" + out + " 2>&1";
  const int status = std::system(cmd.c_str());
  const std::string printed = read_text(out);
  INFO(printed);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  const std::string readme = read_text(source_path("README.md"));
  std::istringstream lines(printed);
  int checked = 0;
  for (std::string line; std::getline(lines, line); ++checked) {
    INFO(line);
    CHECK(readme.find("\n" + line + "\n") != std::string::npos);
  }
  // Four headings and their rows: capacity's runs, two routers at two rates, three replicas,
  // two placements.
  CHECK(checked >= 19);
}

// What a user reads on the console and in the result's header: vLLM's labels in the summary
// table, plain English in `list policies`, and a command line that a shell reads back as given.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <utility>

#include "run/result.h"
#include "test_support.h"
#include "tools/list.h"
#include "tools/shell_quote.h"

namespace servesim {
namespace {

using testing::load_scenario;
using testing::run_cli;
using testing::run_doc;
using testing::source_path;
using testing::tmp_path;

TEST_CASE("the summary table labels its latencies as benchmark_serving does", "[console]") {
  const RunOutput out = run_doc(load_scenario("closed_loop_h100.json"), "closed_loop_h100.json");
  const std::string table = summary_table("closed_loop_h100", out.result["summary"]);
  for (const char* label : {"Mean TTFT (ms):", "Median TTFT (ms):", "P99 TTFT (ms):",
                            "Mean TPOT (ms):", "Mean ITL (ms):", "P99 E2EL (ms):"})
    CHECK_THAT(table, Catch::Contains(label));
  CHECK_THAT(table, !Catch::Contains("ttft_ms (ms)"));
}

TEST_CASE("list policies names each kind in the plural", "[console]") {
  const std::string text = describe_policies();
  CHECK_THAT(text, Catch::Contains("KV policies (/policies/kv/name):"));
  CHECK_THAT(text, Catch::Contains("routers (/policies/router/name):"));
  CHECK_THAT(text, !Catch::Contains("policys"));
}

TEST_CASE("the recorded command line reads back as the words given", "[console]") {
  CHECK(shell_quoted({"servesim", "run", "q11.json", "--set", "/seed=3"}) ==
        "servesim run q11.json --set /seed=3");
  CHECK(shell_quoted({"servesim", "run", "my scenario.json"}) == "servesim run 'my scenario.json'");
  CHECK(shell_quoted({"--set", "/name=it's", ""}) == "--set '/name=it'\\''s' ''");
  CHECK(shell_quoted({"--set", "/policies/router={\"name\":\"round_robin\"}"}) ==
        "--set '/policies/router={\"name\":\"round_robin\"}'");

  // Through the command: the result's header carries the quoted form.
  const std::string out = tmp_path("console_cmdline.json");
  REQUIRE(run_cli("run " + source_path("scenarios/closed_loop_h100.json") + " -q -o " + out +
                  " --set '/name=\"two words\"'") == 0);
  const nlohmann::json result = read_json_file(out);
  CHECK_THAT(result["servesim"]["command_line"].get<std::string>(),
             Catch::EndsWith("--set '/name=\"two words\"'"));
}

TEST_CASE("each subcommand's help lists its options, defined when it is named", "[console]") {
  // Options are added as the command line names a subcommand (tools/main.cc): its help, and
  // only its, has them.
  const std::string out = tmp_path("help_" + std::to_string(getpid()) + ".txt");
  const auto help = [&](const std::string& args) {
    const std::string cmd = std::string(SERVESIM_BINARY) + " " + args + " --help >" + out;
    REQUIRE(std::system(cmd.c_str()) == 0);
    return testing::read_text(out);
  };
  const std::string top = help("");
  for (const char* name : {"run", "list", "validate", "model", "compare", "sweep", "capacity"})
    CHECK_THAT(top, Catch::Contains(name));
  CHECK_THAT(top, !Catch::Contains("--requests-out"));
  const std::pair<const char*, const char*> wanted[] = {
      {"run", "--requests-out"},     {"list", "gpus | models | policies"},
      {"validate", "--rows"},        {"model import", "--name"},
      {"compare", "--all-metrics"},  {"sweep", "--grid"},
      {"sweep collect", "--poll-s"}, {"capacity", "--max-runs"}};
  for (const auto& [command, option] : wanted) {
    INFO(command);
    const std::string text = help(command);
    CHECK_THAT(text, Catch::Contains(option));
    if (std::string(command) != "run") CHECK_THAT(text, !Catch::Contains("--requests-out"));
  }
}

}  // namespace
}  // namespace servesim

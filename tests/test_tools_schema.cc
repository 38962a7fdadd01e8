// The documented result and scenario schemas hold for the shipped scenarios, and every result
// carries its run metadata (version, scenario hash, seed, command line).

#include <catch2/catch.hpp>
#include <filesystem>

#include "run/scenario_hash.h"
#include "test_support.h"

using namespace servesim;
using namespace servesim::testing;

namespace {

/// Runs tools/check_schema.py (Debian's python3-jsonschema); exit status, messages in `err`.
int check_schema(const std::string& schema, const std::string& files, std::string* out) {
  const std::string log =
      tmp_path("check_" + schema + ".txt");  // one per schema: tests run side by side
  const std::string cmd = source_path("tools/check_schema.py") + " " +
                          source_path("scenarios/schema/" + schema) + " " + files + " >" + log +
                          " 2>&1";
  const int status = std::system(cmd.c_str());
  *out = read_text(log);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("shipped scenarios match the scenario schema", "[tools][schema]") {
  std::string files;
  for (const auto& e : std::filesystem::directory_iterator(source_path("scenarios")))
    if (e.path().extension() == ".json") files += " " + e.path().string();
  std::string out;
  CHECK(check_schema("scenario.schema.json", files, &out) == 0);
  INFO(out);
  CHECK(out.empty());
}

TEST_CASE("shipped scenarios' results match the result schema", "[tools][schema]") {
  const std::string q11 = tmp_path("schema_q11.json");
  const std::string q11_rr = tmp_path("schema_q11_rr.json");
  const std::string azure = tmp_path("schema_azure.json");
  REQUIRE(run_cli("run " + source_path("scenarios/seed_q11_four_node.json") + " -q -o " + q11) ==
          0);
  // Round robin drops requests and preempts: the optional keys appear.
  REQUIRE(
      run_cli("run " + source_path("scenarios/seed_q11_four_node.json") +
              " -q --set /policies/router/name=round_robin --set '/slo={\"ttft_ms\":2000}' -o " +
              q11_rr) == 0);
  std::string files = q11 + " " + q11_rr;
  if (std::filesystem::exists(source_path("../shared/data/traces/azure2023"))) {
    REQUIRE(run_cli("run " + source_path("scenarios/azure_conv_8xh100.json") +
                    " -q --set /workload/max_requests=300 -o " + azure) == 0);
    files += " " + azure;
  }
  std::string out;
  CHECK(check_schema("result.schema.json", files, &out) == 0);
  INFO(out);
  CHECK(out.empty());

  // The validator does reject a result that breaks the schema.
  nlohmann::json broken = nlohmann::json::parse(read_text(q11));
  broken["summary"].erase("p99_ttft_ms");
  broken["servesim"]["seed"] = "one";
  const std::string broken_path = tmp_path("schema_broken.json");
  std::ofstream(broken_path) << broken.dump();
  CHECK(check_schema("result.schema.json", broken_path, &out) == 1);
  CHECK(out.find("/servesim/seed") != std::string::npos);
  CHECK(out.find("p99_ttft_ms") != std::string::npos);
}

TEST_CASE("scenarios/schema.md is generated from the schemas", "[tools][schema]") {
  const std::string log = tmp_path("schema_doc.txt");
  const int status = std::system(
      (source_path("tools/schema_doc.py") + " --check >" + log + " 2>&1")
          .c_str());
  INFO(read_text(log));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("results carry run metadata with a scenario hash after --set", "[tools][schema]") {
  const nlohmann::json doc = load_scenario("seed_q11_four_node.json");
  RunOptions options;
  options.command_line = "servesim run q11.json";
  const auto base = run_doc(doc, "q11.json", options).result["servesim"];
  CHECK(base["version"] == SERVESIM_VERSION);
  CHECK(base["seed"] == 1);
  CHECK(base["command_line"] == "servesim run q11.json");
  const std::string hash = base["scenario_hash"];
  CHECK(hash.size() == 16);
  CHECK(hash == scenario_hash(doc));

  options.seed = 7;  // the seed is recorded on its own, not hashed
  CHECK(run_doc(doc, "q11.json", options).result["servesim"]["scenario_hash"] == hash);
  options.overrides = {"/workload/requests=100"};
  const auto changed = run_doc(doc, "q11.json", options).result["servesim"];
  CHECK(changed["scenario_hash"] != hash);
  nlohmann::json edited = doc;
  edited["workload"]["requests"] = 100;
  CHECK(changed["scenario_hash"] == scenario_hash(edited));
  // Key order and whitespace in the file do not matter; values do.
  CHECK(scenario_hash(nlohmann::json::parse(R"({"b": 1, "a": 2})")) ==
        scenario_hash(nlohmann::json::parse(R"({"a":2,"b":1})")));
}

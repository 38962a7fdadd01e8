// The strict loader: each bad input gives one exact line naming the file and JSON pointer (or
// trace line), and the CLI exits 2 without writing an output file.

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "sim/error.h"
#include "test_support.h"

using namespace servesim;
using namespace servesim::testing;
using nlohmann::json;

namespace {

std::string load_error(const json& doc) {
  try {
    run_doc(doc);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

json q11() {
  return load_scenario("seed_q11_four_node.json");
}

}  // namespace

TEST_CASE("bad scenarios give exact one-line errors with file and JSON pointer", "[loader]") {
  json d;

  d = q11();
  d["cluster"]["gpu_types"]["gpu8g"]["memory_bytes"] = -8;
  CHECK(load_error(d) == "q11.json: /cluster/gpu_types/gpu8g/memory_bytes: must be > 0, got -8");

  d = q11();
  d["seed"] = "one";
  CHECK(load_error(d) == "q11.json: /seed: expected an integer, got a string");

  d = q11();
  d.erase("model");
  CHECK(load_error(d) == "q11.json: /: missing required key 'model'");

  d = q11();
  d["policies"]["router"]["name"] = "sise_class";
  CHECK(load_error(d) ==
        "q11.json: /policies/router/name: unknown router 'sise_class'; valid: "
        "cache_aware, kv_aware, least_loaded, round_robin, session_affinity, size_class");

  d = q11();
  d["model"] = "Llama-3.1-8B";
  CHECK(load_error(d) ==
        "q11.json: /instances/0: model Llama-3.1-8B does not fit instance 'C1': 16.06 GB "
        "weights + 0.86 GB reserve per GPU exceed 8.59 GB by 8.33 GB");

  d = q11();
  d["instances"][0]["gpus"][0] = "C9/0";
  CHECK(load_error(d) == "q11.json: /instances/0/gpus/0: unknown GPU 'C9/0' (write NODE/INDEX)");

  d = q11();
  d["instances"][3]["tp"] = 4;
  CHECK(load_error(d) == "q11.json: /instances/3/gpus: tp x pp = 4 GPUs needed, 2 listed");

  d = q11();
  d["instances"][1]["gpus"][0] = "C1/0";
  CHECK(load_error(d) ==
        "q11.json: /instances/1/gpus/0: GPU 'C1/0' is already used by another instance");

  d = q11();
  d["precision"]["weights"] = "int3";
  CHECK(load_error(d) ==
        "q11.json: /precision/weights: unknown dtype 'int3'; valid: fp16, bf16, fp8, int8, int4, "
        "fp4");

  d = q11();
  d["policies"]["router"]["classes"][0]["instances"][1] = "C9";
  CHECK(load_error(d) ==
        "q11.json: /policies/router/classes/0/instances/1: unknown instance "
        "'C9'; valid: C1, C2, C3, C4");

  d = q11();
  d["policies"]["router"]["classes"][1]["max_total_tokens"] = 512;
  CHECK(load_error(d) ==
        "q11.json: /policies/router/classes/1/max_total_tokens: class bounds "
        "must increase from one class to the next");

  d = q11();
  d["cluster"]["nodes"][0]["gpus"][0] = "gpu9g";
  CHECK(load_error(d).starts_with(
      "q11.json: /cluster/nodes/0/gpus/0: unknown GPU type 'gpu9g'; valid: gpu12g, gpu8g, "
      "A100-SXM-40,"));

  d = q11();
  d["modle"] = "x";
  CHECK(load_error(d).starts_with("q11.json: /modle: unknown key; valid here: "));

  d = q11();
  d["cluster"]["network"]["latency_s"] = -1;
  CHECK(load_error(d) == "q11.json: /cluster/network/latency_s: must be >= 0, got -1");

  d = q11();
  d["policies"]["batcher"]["max_num_seqs"] = 2.5;
  CHECK(load_error(d) == "q11.json: /policies/batcher/max_num_seqs: expected an integer, got 2.5");

  d = q11();
  d["model"] = "Llama-9B";
  CHECK(load_error(d).starts_with("q11.json: /model: unknown model 'Llama-9B'; valid: "));

  d = q11();
  d["policies"]["router"]["output_length"] = "noisy";
  CHECK(load_error(d) == "q11.json: /policies/router: missing required key 'noise_sigma'");

  d = q11();
  d["cluster"]["nodes"].push_back(d["cluster"]["nodes"][0]);
  CHECK(load_error(d) == "q11.json: /cluster/nodes/4/name: duplicate node name 'C1'");
}

TEST_CASE("switching policy by name keeps the scenario valid, typos do not pass", "[loader]") {
  json d = q11();
  d["policies"]["router"]["name"] = "round_robin";  // its classes become inactive settings
  CHECK_NOTHROW(run_doc(d));
  d["policies"]["router"]["clases"] = json::array();
  CHECK(load_error(d).starts_with("q11.json: /policies/router/clases: unknown key;"));
}

TEST_CASE("a trace row that does not parse names the file and line", "[loader]") {
  const std::string csv = tmp_path("bad_trace.csv");
  {
    std::ofstream out(csv);
    out << "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        << "2023-11-16 18:15:46.6805900,374,44\n"
        << "2023-11-16 18:15:47.0000000,abc,10\n";
  }
  json d = load_scenario("azure_conv_8xh100.json");
  d["workload"]["path"] = csv;
  try {
    run_doc(d, "azure.json");
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()) ==
          csv + ":3: ContextTokens: expected a non-negative integer, got 'abc'");
  }
}

TEST_CASE("the CLI exits 2 with one line and writes no output on bad input", "[loader][cli]") {
  const std::string out = tmp_path("never_written.json");
  std::filesystem::remove(out);
  std::string err;
  const std::string scenario = source_path("scenarios/seed_q11_four_node.json");
  CHECK(run_cli("run " + scenario + " -o " + out + " --set /policies/router/name=sise_class",
                &err) == 2);
  CHECK(err == "error: " + scenario +
                   ": /policies/router/name: unknown router 'sise_class'; valid: cache_aware, "
                   "kv_aware, least_loaded, round_robin, session_affinity, size_class\n");
  CHECK_FALSE(std::filesystem::exists(out));

  CHECK(run_cli("run " + scenario + " -o " + out + " --set /nope/x=1", &err) == 2);
  CHECK(err == "error: --set /nope/x=1: /nope does not exist in the scenario\n");
  CHECK_FALSE(std::filesystem::exists(out));

  const std::string broken = tmp_path("broken.json");
  {
    std::ofstream o(broken);
    o << "{\n  \"name\": \"x\",\n  \"seed\": 1,,\n}\n";
  }
  CHECK(run_cli("run " + broken + " -o " + out, &err) == 2);
  CHECK(err.starts_with("error: " + broken + ":3:13: invalid JSON: "));
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK_FALSE(std::filesystem::exists(out));
}

// The bad-input corpus (tests/bad_inputs/manifest.txt): every case must exit 2 with exactly one
// line on standard error, of bounded length and free of control bytes, naming the file or
// place at fault, and must leave no output file (neither the -o target nor a .tmp).

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "test_support.h"

namespace servesim {
namespace {

using testing::run_cli;
using testing::source_path;
using testing::tmp_path;

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(' ');
  const auto end = s.find_last_not_of(' ');
  return begin == std::string::npos ? "" : s.substr(begin, end - begin + 1);
}

/// Runs one case in an empty folder of its own; checks the contract on what it leaves.
void check_case(int index, const std::string& fragment_template, const std::string& args_template) {
  const std::string case_dir = tmp_path("bad_inputs/case_" + std::to_string(index));
  std::filesystem::remove_all(case_dir);
  std::filesystem::create_directories(case_dir);
  auto expand = [&](std::string s) {
    s = replace_all(s, "@BAD@", source_path("tests/bad_inputs"));
    s = replace_all(s, "@SCN@", source_path("scenarios"));
    s = replace_all(s, "@OUT@", case_dir + "/out.json");
    return replace_all(s, "@CASE@", case_dir);
  };
  const std::string args = expand(args_template);
  const std::string fragment = expand(fragment_template);
  INFO("case " << index << ": servesim " << args);
  std::string err;
  CHECK(run_cli(args + " -q", &err) == 2);
  INFO("stderr: " << err);
  CHECK(err.size() <= 300);
  REQUIRE(!err.empty());
  CHECK(err.back() == '\n');
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK(err.rfind("error: ", 0) == 0);
  bool control_bytes = false;
  for (size_t i = 0; i + 1 < err.size(); ++i)
    control_bytes = control_bytes || static_cast<unsigned char>(err[i]) < 0x20 || err[i] == 0x7F;
  CHECK_FALSE(control_bytes);
  CHECK(err.find(fragment) != std::string::npos);
  // Nothing written: the case folder stays empty (no out.json, no .tmp, no records).
  CHECK(std::filesystem::is_empty(case_dir));
  CHECK_FALSE(std::filesystem::exists(case_dir + ".tmp"));
}

TEST_CASE("every bad input in the corpus exits 2 with one located line and no file",
          "[bad_inputs]") {
  std::ifstream manifest(source_path("tests/bad_inputs/manifest.txt"));
  REQUIRE(manifest);
  std::string line;
  int cases = 0;
  while (std::getline(manifest, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto bar = line.find(" | ");
    REQUIRE(bar != std::string::npos);
    check_case(++cases, trim(line.substr(0, bar)), trim(line.substr(bar + 3)));
  }
  CHECK(cases >= 40);
}

TEST_CASE("a scenario nested 100,000 levels deep is refused without overflowing the stack",
          "[bad_inputs]") {
  const std::string path = tmp_path("bad_inputs/deep_100k.json");
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  {
    std::ofstream out(path);
    out << R"({"ignored": )" << std::string(100'000, '[') << std::string(100'000, ']') << "}";
  }
  const std::string out_path = tmp_path("bad_inputs/deep_100k_out.json");
  std::filesystem::remove(out_path);
  std::string err;
  CHECK(run_cli("run " + path + " -q -o " + out_path, &err) == 2);
  CHECK(err.find("deep_100k.json: /ignored/0/0") != std::string::npos);
  CHECK(err.find("nested deeper than 64 levels") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK(err.size() <= 300);
  CHECK_FALSE(std::filesystem::exists(out_path));
}

TEST_CASE("a scenario path that is not UTF-8 still gives a whole result", "[bad_inputs]") {
  // Paths are bytes to the system: the run is valid, and its result records the path with
  // the bad bytes replaced rather than losing the run to the JSON writer at the end.
  const std::string dir = tmp_path("bad_inputs/not_utf8_path");
  std::filesystem::create_directories(dir);
  const std::string scenario = dir + "/q\xff.json";
  std::filesystem::copy_file(source_path("scenarios/seed_q6_parallelism.json"), scenario,
                             std::filesystem::copy_options::overwrite_existing);
  const std::string out = dir + "/out.json";
  std::filesystem::remove(out);
  std::string err;
  REQUIRE(run_cli("run '" + scenario + "' -q -o " + out, &err) == 0);
  const auto result = nlohmann::json::parse(testing::read_text(out));
  CHECK(result["servesim"]["command_line"].get<std::string>().find("q\xEF\xBF\xBD.json") !=
        std::string::npos);  // U+FFFD
}

}  // namespace
}  // namespace servesim

TEST_CASE("an output path that is a FIFO or a device is written in place, never replaced",
          "[bad_inputs]") {
  // `-o /dev/null` must not rename a temporary file over the device (as root it would): a FIFO
  // stands in for it here.
  const std::string fifo = servesim::testing::tmp_path("result_fifo_" + std::to_string(::getpid()));
  const std::string copy = fifo + ".json";
  std::filesystem::remove(fifo);
  REQUIRE(std::system(("mkfifo " + fifo).c_str()) == 0);
  REQUIRE(std::system(("cat " + fifo + " > " + copy + " &").c_str()) == 0);
  std::string err;
  CHECK(servesim::testing::run_cli(
            "run " + servesim::testing::source_path("scenarios/seed_q7_static_batching.json") +
                " -q -o " + fifo,
            &err) == 0);
  INFO(err);
  CHECK(std::filesystem::is_fifo(fifo));
  CHECK_FALSE(std::filesystem::exists(fifo + ".tmp"));
  std::filesystem::remove(fifo);
}

// tools/plot.py renders every plot from shipped-scenario results, through the command the
// README gives for its example plots (tools/make_readme_plots.sh).

#include <catch2/catch.hpp>
#include <filesystem>

#include "test_support.h"

using namespace servesim::testing;

namespace {

uint32_t big_endian32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

}  // namespace

TEST_CASE("the README's plot command renders valid, non-trivial PNGs", "[tools][plot]") {
  const std::string out = tmp_path("readme_plots");
  std::filesystem::remove_all(out);
  const std::string cmd = "SERVESIM=" + std::string(SERVESIM_BINARY) + " PYTHON=/usr/bin/python3 " +
                          source_path("tools/make_readme_plots.sh") + " " + out + " >" +
                          tmp_path("readme_plots.log") + " 2>&1";
  const int status = std::system(cmd.c_str());
  INFO(read_text(tmp_path("readme_plots.log")));
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);

  const std::vector<std::string> expected = {
      "cdf_ttft.png",
      "cdf_tpot.png",
      "cdf_e2el.png",
      "size_class_kv_occupancy.png",
      "size_class_queue_depth.png",
      "size_class_gpu_utilisation.png",
      "size_class_gpu_memory.png",
      "size_class_link_bytes.png",
      "round_robin_kv_occupancy.png",
      "round_robin_queue_depth.png",
      "round_robin_gpu_utilisation.png",
      "round_robin_gpu_memory.png",
      "round_robin_link_bytes.png",
      "sweep_p99_ttft_ms.png",
      "sweep_request_throughput.png",
  };
  std::string files;
  for (const auto& name : expected) {
    INFO(name);
    const std::string png = read_text(out + "/" + name);
    REQUIRE(png.size() > 10000);
    CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
    CHECK(png.compare(12, 4, "IHDR") == 0);
    CHECK(big_endian32(png, 16) >= 400);  // width
    CHECK(big_endian32(png, 20) >= 300);  // height
    files += " " + out + "/" + name;
  }
  // Decoded, each image has many colours and drawn content, not a blank canvas.
  const std::string check =
      "/usr/bin/python3 -c \"import sys, numpy, matplotlib.image as m\n"
      "for p in sys.argv[1:]:\n"
      "    a = m.imread(p)[..., :3].reshape(-1, 3)\n"
      "    colours = len(numpy.unique(a, axis=0))\n"
      "    ink = float((a.sum(axis=1) < 2.5).mean())\n"
      "    assert colours > 20 and ink > 0.01, (p, colours, ink)\n\"" +
      files + " >" + tmp_path("png_check.log") + " 2>&1";
  const int check_status = std::system(check.c_str());
  INFO(read_text(tmp_path("png_check.log")));
  CHECK(WIFEXITED(check_status));
  CHECK(WEXITSTATUS(check_status) == 0);
}

TEST_CASE("plot.py names the file when a result lacks per-request records", "[tools][plot]") {
  const std::string result = tmp_path("plot_norequests.json");
  REQUIRE(run_cli("run " + source_path("scenarios/seed_q11_four_node.json") +
                  " -q --set /output/requests=false --set /workload/requests=50 -o " + result) ==
          0);
  const std::string log = tmp_path("plot_norequests.log");
  const std::string cmd = source_path("tools/plot.py") + " cdf " + result + " -o " +
                          tmp_path("plot_norequests") + " >" + log + " 2>&1";
  const int status = std::system(cmd.c_str());
  CHECK(WEXITSTATUS(status) == 2);
  CHECK(read_text(log).find(result + ": /requests") != std::string::npos);
}

TEST_CASE("plot.py validate draws predicted against measured for the serving rows",
          "[tools][plot]") {
  const std::string table = tmp_path("plot_validate.json");
  REQUIRE(run_cli("validate -o " + table) == 0);
  const std::string out = tmp_path("plot_validate");
  std::filesystem::remove_all(out);
  const std::string log = tmp_path("plot_validate.log");
  const int status = std::system(
      (source_path("tools/plot.py") + " validate " + table + " -o " + out + " >" + log + " 2>&1")
          .c_str());
  INFO(read_text(log));
  REQUIRE(WEXITSTATUS(status) == 0);
  const std::string png = read_text(out + "/validate_silicon.png");
  REQUIRE(png.size() > 20000);  // two scatter panels, four groups each
  CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  CHECK(big_endian32(png, 16) >= 1000);  // two panels side by side

  // A table without serving rows is named, exit 2.
  const std::string empty = tmp_path("plot_validate_empty.json");
  {
    std::ofstream f(empty);
    f << R"({"tables": [{"name": "vidur_linear", "predictions": []}]})";
  }
  CHECK(WEXITSTATUS(std::system((source_path("tools/plot.py") + " validate " + empty + " -o " +
                                 out + " >" + log + " 2>&1")
                                    .c_str())) == 2);
  CHECK(read_text(log).find(empty + ": no silicon tables") != std::string::npos);
}

TEST_CASE("plot.py reads --requests-out records and plots what a result without them allows",
          "[tools][plot]") {
  const std::string result = tmp_path("plot_jsonl_result.json");
  const std::string records = tmp_path("plot_jsonl_records.jsonl");
  REQUIRE(run_cli("run " + source_path("scenarios/seed_q11_four_node.json") +
                  " -q --set /workload/requests=60 --requests-out " + records + " -o " + result) ==
          0);
  const std::string out = tmp_path("plot_jsonl");
  std::filesystem::remove_all(out);
  const std::string log = tmp_path("plot_jsonl.log");
  auto plot = [&](const std::string& args) {
    const int status = std::system(
        (source_path("tools/plot.py") + " " + args + " -o " + out + " >" + log + " 2>&1").c_str());
    return WEXITSTATUS(status);
  };
  // The records file alone gives the CDFs.
  REQUIRE(plot("cdf " + records) == 0);
  CHECK(read_text(out + "/cdf_ttft.png").size() > 10000);
  // `all` on a result without records and its records file: every plot, with a note that the
  // result itself has no records (it used to stop at the CDFs with exit 2).
  REQUIRE(plot("all " + result + " " + records) == 0);
  CHECK(read_text(log).find("no per-request records, so no latency CDF from it") !=
        std::string::npos);
  CHECK(std::filesystem::exists(out + "/plot_jsonl_result_kv_occupancy.png"));
  // A bad line is named by file and line.
  {
    std::ofstream f(records, std::ios::app);
    f << "{not json\n";
  }
  CHECK(plot("cdf " + records) == 2);
  CHECK(read_text(log).find(records + ":61:") != std::string::npos);
}

TEST_CASE("plot.py names sweep plots after their sweep, so two sweeps share a folder",
          "[tools][plot]") {
  const std::string q11 = source_path("scenarios/seed_q11_four_node.json");
  for (const char* name : {"by_router", "by_rate"})
    REQUIRE(run_cli("sweep " + q11 + " -q -j 2 --set /workload/requests=40 -o " + tmp_path(name) +
                    " --grid /workload/rate_per_s=1,2") == 0);
  const std::string out = tmp_path("plot_two_sweeps");
  std::filesystem::remove_all(out);
  for (const char* name : {"by_router", "by_rate"})
    REQUIRE(WEXITSTATUS(std::system((source_path("tools/plot.py") + " sweep " + tmp_path(name) +
                                     "/sweep.json -o " + out + " >/dev/null 2>&1")
                                        .c_str())) == 0);
  CHECK(std::filesystem::exists(out + "/by_router_p99_ttft_ms.png"));
  CHECK(std::filesystem::exists(out + "/by_rate_p99_ttft_ms.png"));
}

TEST_CASE("plot.py draws power, MFU and MBU over time and energy per GPU",
          "[tools][plot][energy]") {
  const std::string result = tmp_path("plot_energy.json");
  REQUIRE(run_cli("run " + source_path("scenarios/closed_loop_h100.json") +
                  " -q --set /instances/0/tp=2 -o " + result) == 0);
  const std::string out = tmp_path("plot_energy");
  std::filesystem::remove_all(out);
  const int status = std::system(
      (source_path("tools/plot.py") + " energy " + result + " -o " + out + " >/dev/null 2>&1")
          .c_str());
  REQUIRE(WEXITSTATUS(status) == 0);
  for (const char* name : {"power_utilisation.png", "gpu_energy.png"}) {
    INFO(name);
    const std::string png = read_text(out + "/" + name);
    CHECK(png.size() > 10000);
    CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  }
}

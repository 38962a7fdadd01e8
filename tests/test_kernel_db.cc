// The measured-kernel database backend (models/kernel_db.h): lookups on and between grid points
// of the H100-SXM tables, and a closed-loop run priced from them against the fitted model.

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <string>

#include "models/kernel_db.h"
#include "sim/error.h"
#include "test_support.h"

namespace servesim {
namespace {

using testing::load_scenario;
using testing::run_cli;
using testing::run_doc;
using testing::source_path;
using testing::tmp_path;

std::string kernel_dir(const std::string& gpu) {
  return std::string(SERVESIM_SHARED_DIR) + "/data/kernels/aiconfigurator/" + gpu;
}

const KernelDb& h100() {
  static const std::shared_ptr<const KernelDb> db = KernelDb::load_shared(kernel_dir("h100_sxm"));
  return *db;
}

/// The latency (ms) of the first GEMM row that starts with `prefix` after the framework columns.
double gemm_row_ms(const std::string& key) {
  std::ifstream in(kernel_dir("h100_sxm") + "/gemm/vllm/0.19.0/gemm_perf.csv");
  std::string line;
  while (std::getline(in, line)) {
    const size_t at = line.find(key);
    if (at != std::string::npos && at + key.size() < line.size() &&
        line.find(',', at + key.size()) == std::string::npos)
      return std::stod(line.substr(at + key.size()));
  }
  FAIL("no GEMM row " << key);
  return 0;
}

TEST_CASE("kernel db loads every GPU folder quickly", "[kernel_db]") {
  for (const char* gpu : {"a100_sxm", "h100_sxm", "h200_sxm"}) {
    const auto start = std::chrono::steady_clock::now();
    const KernelDb db = KernelDb::load(kernel_dir(gpu));
    const double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    INFO(gpu << " loaded in " << load_s << " s");
    // About 0.1 s each in a Release build on a 2-core machine; the bound leaves room for
    // sanitizer and debug builds.
    CHECK(load_s < 2.0);
    CHECK(db.sources().size() == 5);
    CHECK(db.has_allreduce(8));
  }
}

TEST_CASE("kernel db: an on-grid GEMM is the measured row", "[kernel_db]") {
  // h100_sxm/gemm/vllm/0.19.0/gemm_perf.csv line 8779:
  //   VLLM,0.19.0,NVIDIA H100 80GB
  //   HBM3,gemm,vllm_default,bfloat16,4096,4096,4096,0.1741351154115465
  const double ms = gemm_row_ms(",bfloat16,4096,4096,4096,");
  CHECK(ms == 0.1741351154115465);
  CHECK(h100().gemm_time_s(4096, 4096, 4096, DType::kBf16) == ms * 1e-3);
  CHECK(h100().device() == "NVIDIA H100 80GB HBM3");
}

TEST_CASE("kernel db: an off-grid k lies between its measured neighbours", "[kernel_db]") {
  // Lines 41522 and 41519: (m, n) = (1024, 4096) at k = 12288 and 16384; 14336 is not measured
  // (Llama-3 FFN width).
  const double lo = gemm_row_ms(",bfloat16,1024,4096,12288,") * 1e-3;
  const double hi = gemm_row_ms(",bfloat16,1024,4096,16384,") * 1e-3;
  const double mid = h100().gemm_time_s(1024, 4096, 14336, DType::kBf16);
  CHECK(mid > lo);
  CHECK(mid < hi);
  // Past the grid the time grows in proportion to m (throughput-bound end).
  const double edge = h100().gemm_time_s(32768, 4096, 4096, DType::kBf16);
  CHECK(h100().gemm_time_s(65536, 4096, 4096, DType::kBf16) == Approx(2 * edge));
  // fp8 is measured on H100 and is faster than bf16 on a large GEMM.
  CHECK(h100().gemm_time_s(8192, 8192, 8192, DType::kFp8) <
        h100().gemm_time_s(8192, 8192, 8192, DType::kBf16));
}

TEST_CASE("kernel db: decode attention grows with context", "[kernel_db]") {
  // Llama-3.1-8B at TP 1: 32 query heads, 8 KV heads, head_dim 128.
  double last = 0;
  for (double context : {64.0, 512.0, 2000.0, 8000.0, 30000.0}) {
    const double t = h100().decode_attention_time_s(16, context, 32, 8, 128, DType::kBf16);
    INFO("context " << context);
    CHECK(t > last);
    last = t;
  }
  // fp8 KV halves the bytes read at long context.
  CHECK(h100().decode_attention_time_s(64, 4095, 32, 8, 128, DType::kFp8) <
        h100().decode_attention_time_s(64, 4095, 32, 8, 128, DType::kBf16));
  // An unmeasured head configuration (16 KV heads) is the 8-KV-head one scaled by KV bytes.
  CHECK(h100().decode_attention_time_s(8, 1023, 32, 16, 128, DType::kBf16) ==
        Approx(2 * h100().decode_attention_time_s(8, 1023, 32, 8, 128, DType::kBf16)));
  // Prefill attention grows with the prompt.
  CHECK(h100().prefill_attention_time_s(1, 1024, 32, 8, 128) <
        h100().prefill_attention_time_s(1, 4096, 32, 8, 128));
}

TEST_CASE("kernel db: all-reduce grows with bytes", "[kernel_db]") {
  for (int n : {2, 4, 8}) {
    double last = 0;
    for (double bytes : {1e4, 1e6, 1e8}) {
      const double t = h100().allreduce_time_s(n, bytes);
      INFO(n << " GPUs, " << bytes << " bytes");
      CHECK(t > last);
      last = t;
    }
  }
  CHECK_FALSE(h100().has_allreduce(16));
}

TEST_CASE("kernel db: a closed-loop run agrees with the fitted model", "[kernel_db]") {
  const nlohmann::json doc = load_scenario("closed_loop_h100.json");
  const RunOutput fitted = run_doc(doc, "closed_loop_h100.json");
  RunOptions options;
  options.kernel_db = kernel_dir("h100_sxm");
  const RunOutput measured = run_doc(doc, "closed_loop_h100.json", options);
  CHECK(fitted.result["instances"][0]["cost_source"] == "fit");
  CHECK(measured.result["instances"][0]["cost_source"] == "kernel_db");
  const double fit_tpot = fitted.result["summary"]["mean_tpot_ms"].get<double>();
  const double db_tpot = measured.result["summary"]["mean_tpot_ms"].get<double>();
  INFO("fitted " << fit_tpot << " ms, kernel db " << db_tpot << " ms");
  // Measured: fitted 8.59 ms, kernel db 8.39 ms (-2.4%); Llama-3.1-8B and Qwen3-32B at TP
  // 1-8, 32 clients, 2048 in / 256 out agree within 4% as well.
  CHECK(db_tpot == Approx(fit_tpot).epsilon(0.15));

  // The same through the scenario key, relative to the scenario's folder.
  nlohmann::json keyed = doc;
  keyed["kernel_db"] = "../../shared/data/kernels/aiconfigurator/h100_sxm";
  const RunOutput via_key = run_doc(keyed, "closed_loop_h100.json");
  CHECK(via_key.result["summary"]["mean_tpot_ms"].get<double>() == db_tpot);
}

TEST_CASE("kernel db: a bad directory is a one-line error", "[kernel_db]") {
  nlohmann::json doc = load_scenario("closed_loop_h100.json");
  doc["kernel_db"] = "no_such_dir";
  const std::string dir = source_path("scenarios") + "/no_such_dir";
  CHECK_THROWS_WITH(run_doc(doc, "q.json"), "q.json: /kernel_db: no gemm_perf.csv under " + dir);
  doc["kernel_db"] = 3;
  CHECK_THROWS_AS(run_doc(doc, "q.json"), InputError);

  std::string err;
  CHECK(run_cli("run " + source_path("scenarios/closed_loop_h100.json") + " -q -o " +
                    tmp_path("kdb_bad.json") + " --kernel-db /nonexistent/kernels",
                &err) == 2);
  CHECK(err == "error: --kernel-db: no gemm_perf.csv under /nonexistent/kernels\n");
}

TEST_CASE("kernel db: a table names the GPU it was measured on", "[kernel_db]") {
  const double gib = 1024.0 * 1024 * 1024;
  CHECK(h100().measured_on("H100-SXM", 80 * gib));
  CHECK_FALSE(h100().measured_on("H200", 141 * gib));
  CHECK_FALSE(h100().measured_on("A100-SXM-80", 80 * gib));
  const auto a100 = KernelDb::load_shared(kernel_dir("a100_sxm"));  // "NVIDIA A100-SXM4-80GB"
  CHECK(a100->measured_on("A100-SXM-80", 80 * gib));
  CHECK_FALSE(a100->measured_on("A100-SXM-40", 40 * gib));  // the device states 80 GB
  CHECK_FALSE(a100->measured_on("gpu12g", 12 * gib));
}

/// closed_loop_h100.json on two nodes, H100-SXM and A100-SXM-80, one replica on each.
nlohmann::json mixed_cluster() {
  nlohmann::json doc = load_scenario("closed_loop_h100.json");
  doc["cluster"]["nodes"] = nlohmann::json::array(
      {{{"name", "h100"}, {"gpus", {{"type", "H100-SXM"}, {"count", 8}}}},
       {{"name", "a100"}, {"gpus", {{"type", "A100-SXM-80"}, {"count", 8}}}}});
  doc["cluster"]["network"] = {{"bandwidth_bytes_per_s", 12.5e9}, {"latency_s", 5e-6}};
  doc["instances"] = nlohmann::json::array({{{"name", "on_h100"}, {"node", "h100"}, {"tp", 1}},
                                            {{"name", "on_a100"}, {"node", "a100"}, {"tp", 1}}});
  doc["workload"]["concurrency"] = 4;
  doc["workload"]["requests_per_client"] = 2;
  return doc;
}

TEST_CASE("kernel db: a mixed cluster takes each GPU's own table, never another's", "[kernel_db]") {
  const nlohmann::json doc = mixed_cluster();
  // One H100 table for a cluster with A100s: refused, naming the replica and both GPUs.
  RunOptions one_table;
  one_table.kernel_db = kernel_dir("h100_sxm");
  CHECK_THROWS_WITH(run_doc(doc, "mixed.json", one_table),
                    Catch::Contains("--kernel-db: tables measured on 'NVIDIA H100 80GB HBM3' "
                                    "cannot price replica 'on_a100' on A100-SXM-80"));

  // The folder of GPU folders: each replica is priced from its own GPU's tables.
  RunOptions every_gpu;
  every_gpu.kernel_db = std::string(SERVESIM_SHARED_DIR) + "/data/kernels/aiconfigurator";
  const RunOutput both = run_doc(doc, "mixed.json", every_gpu);
  CHECK(both.result["instances"][0]["cost_source"] == "kernel_db");
  CHECK(both.result["instances"][1]["cost_source"] == "kernel_db");

  // By type in the scenario: the A100 keeps the fitted model when only the H100 is mapped...
  nlohmann::json by_type = doc;
  by_type["kernel_db"] = {{"H100-SXM", "../../shared/data/kernels/aiconfigurator/h100_sxm"}};
  const RunOutput h100_only = run_doc(by_type, "mixed.json");
  CHECK(h100_only.result["instances"][0]["cost_source"] == "kernel_db");
  CHECK(h100_only.result["instances"][1]["cost_source"] == "fit");
  // ... and a table mapped to a GPU it was not measured on is refused at its key.
  by_type["kernel_db"]["A100-SXM-80"] = "../../shared/data/kernels/aiconfigurator/h200_sxm";
  CHECK_THROWS_WITH(run_doc(by_type, "mixed.json"),
                    "mixed.json: /kernel_db/A100-SXM-80: tables measured on 'NVIDIA H200', not "
                    "on a A100-SXM-80");
  by_type["kernel_db"] = {{"B200", "../../shared/data/kernels/aiconfigurator/h200_sxm"}};
  CHECK_THROWS_WITH(run_doc(by_type, "mixed.json"),
                    Catch::Contains("/kernel_db/B200: no GPU of type 'B200' in the cluster"));
}

}  // namespace
}  // namespace servesim

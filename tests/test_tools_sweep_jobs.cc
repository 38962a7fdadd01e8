// Sweeps run in pieces: shards (--shard I/N) merged by `sweep collect` into the same bytes as a
// local sweep, partial results refused, Slurm job directories written (--slurm --dry-run), and
// the Slurm job array end to end on a real one-node cluster (tools/slurm_sweep_test.sh).

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "sim/error.h"
#include "test_support.h"
#include "tools/sweep_job.h"

using namespace servesim;
using namespace servesim::testing;
namespace fs = std::filesystem;

namespace {

const std::string kGrid =
    " --set /workload/requests=60 --grid /policies/router/name=round_robin,size_class"
    " --grid /workload/rate_per_s=1,3 --grid /seed=1,2,3 -q";

/// Every file of `a` (but its job/ folder) has the same bytes in `b`, and `b` has no others.
void check_same_files(const std::string& a, const std::string& b) {
  std::set<std::string> names_a, names_b;
  for (const auto& e : fs::directory_iterator(a))
    if (e.path().filename() != "job") names_a.insert(e.path().filename().string());
  for (const auto& e : fs::directory_iterator(b))
    if (e.path().filename() != "job") names_b.insert(e.path().filename().string());
  CHECK(names_a == names_b);
  for (const auto& name : names_a) {
    INFO(name);
    CHECK(read_text(a + "/" + name) == read_text(b + "/" + name));
  }
}

}  // namespace

TEST_CASE("shards are disjoint, strided and cover every point", "[tools][sweep]") {
  const Shard shard = parse_shard("2/5");
  CHECK(shard.index == 2);
  CHECK(shard.count == 5);
  CHECK(shard_points(12, shard) == std::vector<size_t>{2, 7});
  std::vector<int> seen(103, 0);
  for (size_t i = 0; i < 7; ++i)
    for (size_t p : shard_points(seen.size(), Shard{i, 7})) ++seen[p];
  CHECK(std::count(seen.begin(), seen.end(), 1) == 103);
  for (const char* bad : {"5/5", "1/0", "1", "/2", "a/2", "-1/2", "1/2/3", "1/2x"})
    CHECK_THROWS_AS(parse_shard(bad), InputError);
}

TEST_CASE("shards run in any order collect into the local sweep's bytes", "[tools][sweep]") {
  const std::string q11 = source_path("scenarios/seed_q11_four_node.json");
  const std::string local = tmp_path("sweep_jobs_local"), sharded = tmp_path("sweep_jobs_shard");
  fs::remove_all(local);
  fs::remove_all(sharded);
  REQUIRE(run_cli("sweep " + q11 + kGrid + " -j 2 -o " + local) == 0);
  for (const char* shard : {"4/5", "0/5", "2/5", "3/5", "1/5"})
    REQUIRE(run_cli("sweep " + q11 + kGrid + " -j 1 -o " + sharded + " --shard " + shard) == 0);
  CHECK_FALSE(fs::exists(sharded + "/sweep.json"));  // no table until collected
  REQUIRE(run_cli("sweep collect " + sharded + " -q") == 0);
  check_same_files(local, sharded);

  // The table records what decides the results, not how they were run.
  const auto table = nlohmann::json::parse(read_text(local + "/sweep.json"));
  REQUIRE(table["points"].size() == 12);
  const std::string cmd = table["servesim_sweep"]["command_line"];
  CHECK(cmd.rfind("servesim sweep " + q11 + " --set /workload/requests=60 --grid ", 0) == 0);
  CHECK(cmd.find("-j") == std::string::npos);
  CHECK(cmd.find(local) == std::string::npos);
  CHECK(table["points"][5]["seed"] == 3);
  CHECK(table["points"][5]["values"]["/workload/rate_per_s"] == 3);

  // A rerun of a shard whose points are all there runs nothing and changes nothing.
  const std::string before = read_text(sharded + "/point_007.json");
  REQUIRE(run_cli("sweep " + q11 + kGrid + " -o " + sharded + " --shard 2/5") == 0);
  CHECK(read_text(sharded + "/point_007.json") == before);
}

TEST_CASE("collect refuses partial results and lists what is missing", "[tools][sweep]") {
  const std::string q11 = source_path("scenarios/seed_q11_four_node.json");
  const std::string dir = tmp_path("sweep_jobs_partial");
  fs::remove_all(dir);
  REQUIRE(run_cli("sweep " + q11 + kGrid + " -o " + dir + " --shard 0/3") == 0);
  REQUIRE(run_cli("sweep " + q11 + kGrid + " -o " + dir + " --shard 2/3") == 0);
  std::string err;
  CHECK(run_cli("sweep collect " + dir + " -q", &err) == 1);
  CHECK(err.find("4 of 12 points have no result") != std::string::npos);
  CHECK_FALSE(fs::exists(dir + "/sweep.json"));
  CHECK_FALSE(fs::exists(dir + "/sweep.csv"));
  const auto missing = nlohmann::json::parse(read_text(dir + "/missing.json"));
  REQUIRE(missing["missing"].size() == 4);
  CHECK(missing["missing"][0]["index"] == 1);
  CHECK(missing["missing"][0]["file"] == "point_001.json");
  CHECK(missing["missing"][3]["index"] == 10);
  CHECK(missing["missing"][0]["reason"] == "no result");

  // The missing shard completes the sweep; missing.json goes.
  REQUIRE(run_cli("sweep " + q11 + kGrid + " -o " + dir + " --shard 1/3") == 0);
  REQUIRE(run_cli("sweep collect " + dir + " -q") == 0);
  CHECK(nlohmann::json::parse(read_text(dir + "/sweep.json"))["points"].size() == 12);
  CHECK_FALSE(fs::exists(dir + "/missing.json"));

  // Another sweep into the same folder is refused, naming the plan.
  CHECK(run_cli("sweep " + q11 + kGrid + " --grid /workload/requests=5 -o " + dir + " --shard 0/3",
                &err) == 2);
  CHECK(err.find("job/plan.json: holds a different sweep") != std::string::npos);
}

TEST_CASE("a point that fails is noted by point and does not stop its shard", "[tools][sweep]") {
  // A negative rate passes the grid check (it is a number) and fails when its run starts.
  const std::string q11 = source_path("scenarios/seed_q11_four_node.json");
  const std::string dir = tmp_path("sweep_jobs_failed");
  fs::remove_all(dir);
  const std::string grid = " --set /workload/requests=30 --grid /workload/rate_per_s=1,-2,3 -q";
  std::string err;
  CHECK(run_cli("sweep " + q11 + grid + " -o " + dir + " --shard 0/1") == 1);
  CHECK(fs::exists(dir + "/point_000.json"));
  CHECK(fs::exists(dir + "/point_002.json"));
  CHECK_FALSE(fs::exists(dir + "/point_001.json"));
  const std::string note = read_text(dir + "/job/failed/point_001.txt");
  CHECK(note.find("rate_per_s") != std::string::npos);

  const std::string status_file = tmp_path("sweep_jobs_failed_status.txt");
  REQUIRE(std::system((std::string(SERVESIM_BINARY) + " sweep status " + dir + " >" + status_file)
                          .c_str()) == 0);
  const std::string status = read_text(status_file);
  CHECK(status.rfind("3 points: 2 done, 0 running, 0 pending, 1 failed\n", 0) == 0);
  CHECK(status.find("point_001.json: ") != std::string::npos);

  CHECK(run_cli("sweep collect " + dir + " -q") == 1);
  const auto missing = nlohmann::json::parse(read_text(dir + "/missing.json"));
  REQUIRE(missing["missing"].size() == 1);
  CHECK(missing["missing"][0]["reason"].get<std::string>().rfind("failed: ", 0) == 0);
  CHECK(run_cli("sweep resume " + dir, &err) == 2);  // not a Slurm job: says how to rerun
  CHECK(err.find("not a Slurm job") != std::string::npos);
}

TEST_CASE("a dry-run Slurm sweep writes a self-contained job array for 10,000 points",
          "[tools][sweep]") {
  // The 10,000-point spec of tools/bench_sweep.sh: 2 routers x 50 rates x 100 seeds on Q11.
  std::string rates, seeds;
  for (int r = 1; r <= 50; ++r) rates += (r > 1 ? "," : "") + std::to_string(r * 0.1).substr(0, 3);
  for (int s = 1; s <= 100; ++s) seeds += (s > 1 ? "," : "") + std::to_string(s);
  const std::string dir = tmp_path("sweep_jobs_10k");
  fs::remove_all(dir);
  const std::string args = "sweep " + source_path("scenarios/seed_q11_four_node.json") +
                           " --set /output/requests=false --set /output/sample_interval_s=60"
                           " --grid /policies/router/name=round_robin,size_class --grid "
                           "/workload/rate_per_s=" +
                           rates + " --grid /seed=" + seeds + " -o " + dir +
                           " --slurm --dry-run --array-parallel 8 --time 10:00";
  REQUIRE(run_cli(args) == 0);
  const SweepPlan plan = read_job_plan(dir);
  REQUIRE(plan.point_count() == 10'000);
  CHECK(plan.point_file(9'999) == "point_9999.json");
  CHECK(plan.point_overrides(9'999).back() == "/seed=100");
  const auto plan_doc = nlohmann::json::parse(read_text(dir + "/job/plan.json"));
  CHECK(plan_doc["points"].size() == 10'000);
  CHECK(plan_doc["scenario_document"]["name"] == "seed_q11_four_node");

  // At most 1000 tasks by default (Slurm's default MaxArraySize), 10 points each.
  const std::string script = read_text(dir + "/job/array.sbatch");
  CHECK(script.find("--shard \"$SLURM_ARRAY_TASK_ID/1000\"") != std::string::npos);
  CHECK(script.find("#SBATCH --time=10:00\n") != std::string::npos);
  CHECK(script.find("#SBATCH --output=job/logs/task_%a.log\n") != std::string::npos);
  CHECK(script.find(dir) == std::string::npos);  // paths relative to the job directory
  CHECK(fs::exists(dir + "/job/servesim"));
  const auto slurm = nlohmann::json::parse(read_text(dir + "/job/slurm.json"));
  CHECK(slurm["tasks"] == 1000);
  CHECK(slurm["points_per_task"] == 10);
  CHECK(slurm["array_parallel"] == 8);
  CHECK(slurm["submissions"].empty());

  // Not yet submitted: every point is without a result, and resume would submit every task.
  const std::string out = tmp_path("sweep_jobs_10k_out.txt");
  const std::string binary = SERVESIM_BINARY;
  REQUIRE(std::system((binary + " sweep status " + dir + " >" + out).c_str()) == 0);
  CHECK(read_text(out) ==
        "10000 points: 0 done, 0 running, 0 pending, 0 failed, 10000 without a result\n");
  REQUIRE(std::system((binary + " sweep resume " + dir + " --dry-run >" + out).c_str()) == 0);
  CHECK(read_text(out).find("&& sbatch --parsable --array=0-999%8 job/array.sbatch\n") !=
        std::string::npos);

  // Without sbatch the job is still written, and the error says how to submit it later.
  const std::string no_sbatch = tmp_path("sweep_jobs_no_sbatch");
  fs::remove_all(no_sbatch);
  const int status = std::system(("env PATH=/nonexistent " + binary + " sweep " +
                                  source_path("scenarios/seed_q11_four_node.json") +
                                  " --grid /seed=1,2 --slurm -o " + no_sbatch + " 2>" + out)
                                     .c_str());
  CHECK(WEXITSTATUS(status) == 2);
  CHECK(read_text(out).find("sbatch failed") != std::string::npos);
  CHECK(read_text(out).find("submit it later with: servesim sweep resume " + no_sbatch) !=
        std::string::npos);
  CHECK(fs::exists(no_sbatch + "/job/array.sbatch"));

  // A job directory is not reused for another submission.
  std::string err;
  CHECK(run_cli(args, &err) == 2);
  CHECK(err.find("not empty") != std::string::npos);
}

TEST_CASE("a 200-point sweep runs as a Slurm job array, collects and resumes", "[tools][slurm]") {
  // Installs slurm-wlm and munge when missing and starts a one-node cluster: fails, does not
  // skip, where that is impossible.
  const std::string log = tmp_path("slurm_sweep_test.log");
  const std::string cmd = source_path("tools/slurm_sweep_test.sh") + " " + SERVESIM_BINARY + " " +
                          tmp_path("slurm_sweep") + " >" + log + " 2>&1";
  const int status = std::system(cmd.c_str());
  INFO(read_text(log));
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(read_text(log).find("slurm sweep test: passed") != std::string::npos);
}

TEST_CASE("the README's shard example runs as pasted and matches the local sweep",
          "[tools][sweep]") {
  // The fenced block after "The same sweep with no scheduler", run from a folder where build/
  // and scenarios/ are this build and the repository's scenarios.
  const std::string readme = read_text(source_path("README.md"));
  const auto intro = readme.find("The same sweep with no scheduler");
  REQUIRE(intro != std::string::npos);
  const auto begin = readme.find("```\n", intro) + 4;
  const std::string block = readme.substr(begin, readme.find("```", begin) - begin);
  REQUIRE(block.find("--shard {}/4") != std::string::npos);
  const fs::path dir = tmp_path("sweep_jobs_readme");
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::create_directory_symlink(fs::path(SERVESIM_BINARY).parent_path(), dir / "build");
  fs::create_directory_symlink(source_path("scenarios"), dir / "scenarios");
  {
    std::ofstream script(dir / "example.sh");
    script << "set -e\ncd " << dir.string() << "\n" << block;
  }
  REQUIRE(std::system(("bash " + (dir / "example.sh").string() + " >/dev/null").c_str()) == 0);
  // The same sweep run whole, from the same folder so that the recorded paths agree.
  REQUIRE(std::system(("cd " + dir.string() +
                       " && build/servesim sweep scenarios/seed_q11_four_node.json -q -o local"
                       " --grid /policies/router/name=round_robin,least_loaded,size_class"
                       " --grid /workload/rate_per_s=1,2,3")
                          .c_str()) == 0);
  const auto table = nlohmann::json::parse(read_text((dir / "sweep_shards/sweep.json").string()));
  CHECK(table["points"].size() == 9);
  check_same_files((dir / "local").string(), (dir / "sweep_shards").string());
}

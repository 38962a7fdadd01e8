// servesim: the command line. Subcommands: run, list.

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "models/gpu.h"
#include "models/llm.h"
#include "sim/error.h"
#include "tools/runner.h"

namespace {

using namespace servesim;

/// Writes through a temporary file and renames, so a failed run never leaves a partial file
/// that looks whole.
void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw InputError(fmt::format("{}: cannot write", path));
    out << text;
    if (!out) throw InputError(fmt::format("{}: write failed", path));
  }
  std::filesystem::rename(tmp, path);
}

std::string joined_command_line(int argc, char** argv) {
  std::string out;
  for (int i = 0; i < argc; ++i) {
    if (i) out += ' ';
    out += argv[i];
  }
  return out;
}

int list(const std::string& what) {
  if (what == "gpus") {
    fmt::print("{:<14}{:>10}{:>12}{:>12}{:>12}{:>12}\n", "name", "mem_GiB", "HBM_GB/s",
               "bf16_TFLOPS", "fp8_TFLOPS", "NVLink_GB/s");
    for (const auto& g : gpu_catalogue())
      fmt::print("{:<14}{:>10.0f}{:>12.0f}{:>12.1f}{:>12.1f}{:>12.0f}\n", g.name,
                 g.memory_bytes / (1024.0 * 1024 * 1024), g.hbm_bandwidth_bytes_per_s / 1e9,
                 g.bf16_flops_per_s / 1e12, g.fp8_flops_per_s / 1e12,
                 g.nvlink_bandwidth_bytes_per_s / 1e9);
  } else if (what == "models") {
    fmt::print("{:<16}{:>8}{:>8}{:>7}{:>5}{:>6}{:>7}{:>8}{:>7}{:>10}{:>12}\n", "name", "layers",
               "hidden", "heads", "kv", "hdim", "ffn", "vocab", "tied", "params_B", "kv_KiB/tok");
    for (const auto& m : model_catalogue())
      fmt::print("{:<16}{:>8}{:>8}{:>7}{:>5}{:>6}{:>7}{:>8}{:>7}{:>10.2f}{:>12.1f}\n", m.name,
                 m.num_layers, m.hidden_size, m.num_heads, m.num_kv_heads, m.head_dim,
                 m.ffn_hidden_size, m.vocab_size, m.tied_embeddings ? "yes" : "no",
                 static_cast<double>(m.total_params()) / 1e9,
                 m.kv_bytes_per_token(DType::kBf16) / 1024.0);
  } else {
    fmt::print("{}", describe_policies());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "servesim: a discrete-event simulator of LLM inference serving clusters.\n"
      "Describe a cluster, a model placement, scheduling policies and a workload in a scenario\n"
      "file; servesim replays it event by event and reports latency, throughput and\n"
      "utilisation as JSON.",
      "servesim"};
  app.set_version_flag("--version", SERVESIM_VERSION);
  app.require_subcommand(1);

  auto* run = app.add_subcommand("run", "Simulate one scenario and write its result JSON");
  std::string scenario_path, output_path;
  std::optional<uint64_t> seed;
  std::vector<std::string> overrides;
  bool quiet = false;
  run->add_option("scenario", scenario_path, "Scenario JSON file (see scenarios/)")
      ->required()
      ->check(CLI::ExistingFile);
  run->add_option("-o,--output", output_path,
                  "Write the result JSON here ('-' for standard output)");
  run->add_option("--seed", seed, "Override the scenario's /seed (RNG streams derive from it)");
  run->add_option(
         "--set", overrides,
         "Override any scenario value by JSON pointer: --set /policies/router/name=round_robin "
         "(VALUE is parsed as JSON when it parses, else taken as a string); repeatable")
      ->take_all();
  run->add_flag("-q,--quiet", quiet, "Do not print the summary table");

  auto* list_cmd = app.add_subcommand("list", "List the built-in catalogues");
  std::string what;
  list_cmd->add_option("what", what, "gpus | models | policies")
      ->required()
      ->check(CLI::IsMember({"gpus", "models", "policies"}));

  CLI11_PARSE(app, argc, argv);

  try {
    if (list_cmd->parsed()) return list(what);
    RunOptions options;
    options.seed = seed;
    options.overrides = overrides;
    options.command_line = joined_command_line(argc, argv);
    const RunOutput out = run_scenario_file(scenario_path, options);
    const std::string text = out.result.dump(1) + "\n";
    if (output_path == "-")
      std::fwrite(text.data(), 1, text.size(), stdout);
    else if (!output_path.empty())
      write_atomically(output_path, text);
    if (!quiet) fmt::print(output_path == "-" ? stderr : stdout, "{}", out.summary_table);
    return 0;
  } catch (const InputError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  } catch (const InvariantError& e) {
    fmt::print(stderr, "internal error: {}\n", e.what());
    return 3;
  }
}

// servesim: the command line. Subcommands: run, list, validate, compare, sweep, capacity.

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <vector>

#include "models/gpu.h"
#include "models/llm.h"
#include "run/run.h"
#include "run/scenario_file.h"
#include "sim/error.h"
#include "sim/huge_pages.h"
#include "sim/json_parse.h"
#include "tools/capacity.h"
#include "tools/compare.h"
#include "tools/list.h"
#include "tools/model_import.h"
#include "tools/output_file.h"
#include "tools/process_stats.h"
#include "tools/progress.h"
#include "tools/shell_quote.h"
#include "tools/sweep.h"
#include "tools/sweep_command.h"
#include "tools/validate.h"
#include "traces/trace_streams.h"

namespace {

using namespace servesim;

/// A failed run leaves no partial streamed file behind.
void remove_partial(const std::string& path) {
  if (path.empty()) return;
  std::error_code ignored;
  std::filesystem::remove(path + ".tmp", ignored);
}

/// Errors are one line of bounded length on standard error: whatever user bytes they echo.
void print_error(std::string_view prefix, std::string_view message) {
  fmt::print(stderr, "{}{}\n", prefix, printable_excerpt(message, 280));
}

/// --seed as given: CLI11 would take "-1" as 2^64 - 1 and report range errors on two lines.
uint64_t parse_seed(const std::string& text) {
  uint64_t seed = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, seed);
  if (text.empty() || text[0] < '0' || text[0] > '9' || ec != std::errc() || ptr != end)
    throw InputError(fmt::format("--seed {}: expected an integer in [0, {}]",
                                 printable_excerpt(text, 40), UINT64_MAX));
  return seed;
}

/// An output path must name a file we can create, checked before a run that may take long.
void check_output_path(const std::string& option, const std::string& path) {
  if (path.empty() || path == "-") return;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError(fmt::format("{} {}: is a directory; give a file path", option, path));
  const std::string probe = staging_path(path);
  if (probe == path) return;  // a device or a FIFO: written in place, never replaced
  const bool existed = std::filesystem::exists(probe, ec);
  std::ofstream out(probe, std::ios::binary | std::ios::app);
  if (!out) throw InputError(fmt::format("{} {}: cannot write", option, path));
  out.close();
  if (!existed) std::filesystem::remove(probe, ec);
}

std::string joined_command_line(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  return shell_quoted(args);
}

int list(const std::string& what) {
  if (what == "gpus") {
    fmt::print("{:<14}{:>10}{:>12}{:>12}{:>12}{:>12}\n", "name", "mem_GiB", "HBM_GB/s",
               "bf16_TFLOPS", "fp8_TFLOPS", "NVLink_GB/s");
    for (const auto& g : gpu_catalogue())
      fmt::print("{:<14}{:>10.2f}{:>12.0f}{:>12.1f}{:>12.1f}{:>12.0f}\n", g.name,
                 g.memory_bytes / (1024.0 * 1024 * 1024), g.hbm_bandwidth_bytes_per_s / 1e9,
                 g.bf16_flops_per_s / 1e12, g.fp8_flops_per_s / 1e12,
                 g.nvlink_bandwidth_bytes_per_s / 1e9);
  } else if (what == "models") {
    fmt::print("{:<17}{:>7}{:>7}{:>6}{:>5}{:>6}{:>7}{:>8}{:>6}{:>9}{:>10}{:>10}{:>12}\n", "name",
               "layers", "hidden", "heads", "kv", "hdim", "ffn", "vocab", "tied", "experts",
               "params_B", "active_B", "kv_KiB/tok");
    for (const auto& m : model_catalogue()) {
      // experts: routed/top-k(+shared); kv "mla" for a latent cache.
      const std::string experts =
          m.moe() ? fmt::format("{}/{}{}", m.num_experts, m.experts_per_token,
                                m.shared_experts ? fmt::format("+{}", m.shared_experts) : "")
                  : "-";
      fmt::print("{:<17}{:>7}{:>7}{:>6}{:>5}{:>6}{:>7}{:>8}{:>6}{:>9}{:>10.2f}{:>10.2f}{:>12.1f}\n",
                 m.name, m.num_layers, m.hidden_size, m.num_heads,
                 m.mla() ? std::string("mla") : std::to_string(m.num_kv_heads), m.head_dim,
                 m.moe() ? m.expert_ffn_hidden_size : m.ffn_hidden_size, m.vocab_size,
                 m.tied_embeddings ? "yes" : "no", experts,
                 static_cast<double>(m.total_params()) / 1e9,
                 static_cast<double>(m.active_params_per_token()) / 1e9,
                 m.kv_bytes_per_token(DType::kBf16) / 1024.0);
    }
  } else {
    fmt::print("{}", describe_policies());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // First touches of 4 KiB pages dominate the system time of short runs on virtual machines.
  servesim::back_heap_with_huge_pages(size_t{64} << 20);
  CLI::App app{
      "servesim: a discrete-event simulator of LLM inference serving clusters.\n"
      "Describe a cluster, a model placement, scheduling policies and a workload in a scenario\n"
      "file; servesim replays it event by event and reports latency, throughput and\n"
      "utilisation as JSON.",
      "servesim"};
  app.set_version_flag("--version", SERVESIM_VERSION);
  app.require_subcommand(1);

  // Each subcommand's options are defined when the command line names it (CLI11 calls its
  // preparse callback before parsing its arguments): a run does not build the other commands'.
  auto* run = app.add_subcommand("run", "Simulate one scenario and write its result JSON");
  std::string scenario_path, output_path;
  std::optional<std::string> seed_text;
  std::vector<std::string> overrides;
  bool quiet = false;
  std::string requests_out_path;
  std::string kernel_db;
  bool exact_steps = false;
  bool stats = false;
  run->preparse_callback([&](size_t) {
    // Read (and its errors reported) as the scenario is loaded: one located line, exit 2.
    run->add_option("scenario", scenario_path, "Scenario JSON file (see scenarios/)")->required();
    run->add_option("-o,--output", output_path,
                    "Write the result JSON here ('-' for standard output)");
    run->add_option("--seed", seed_text,
                    "Override the scenario's /seed (RNG streams derive from it)");
    run->add_option(
           "--set", overrides,
           "Override any scenario value by JSON pointer: --set /policies/router/name=round_robin "
           "(VALUE is parsed as JSON when it parses, else taken as a string); repeatable")
        ->take_all();
    run->add_flag("-q,--quiet", quiet,
                  "Do not print the summary table or the progress bar (drawn on a terminal only)");
    run->add_option("--requests-out", requests_out_path,
                    "Stream one JSON line per request (completion order) to this file instead of "
                    "keeping a \"requests\" array in the result; memory stays flat");
    run->add_option("--kernel-db", kernel_db,
                    "Interpolate kernel times from this measured-kernel folder (e.g. "
                    "../shared/data/kernels/aiconfigurator/h100_sxm) instead of the fitted model");
    run->add_flag("--exact-steps", exact_steps,
                  "Run every decode step as its own event instead of closed-form stretches between "
                  "batch changes (slower; the reference the fast mode is tested against)");
    run->add_flag("--stats", stats,
                  "Print wall time, simulated/wall ratio, events, events/s and peak RSS to "
                  "standard error (one 'stats:' line)");
  });

  auto* list_cmd = app.add_subcommand("list", "List the built-in catalogues");
  std::string what;
  list_cmd->preparse_callback([&](size_t) {
    list_cmd->add_option("what", what, "gpus | models | policies")
        ->required()
        ->check(CLI::IsMember({"gpus", "models", "policies"}));
  });

  auto* validate_cmd = app.add_subcommand(
      "validate",
      "Reproduce the open published tables (TensorRT-LLM, vLLM, Splitwise) and print predicted vs "
      "measured with the MAPE per table");
  std::string data_dir;
  std::string validate_output;
  bool validate_rows = false;
  validate_cmd->preparse_callback([&](size_t) {
    data_dir = shared_data_dir();
    validate_cmd
        ->add_option("--data", data_dir,
                     "Folder with validation-open/ and profiles/ (default: $SERVESIM_DATA, "
                     "else ../shared/data beside the source tree)")
        ->capture_default_str();
    validate_cmd->add_option("-o,--output", validate_output, "Write every row and MAPE as JSON");
    validate_cmd->add_flag("--rows", validate_rows, "Print every row, not only the MAPE table");
  });

  auto* model_cmd = app.add_subcommand("model", "Work with model descriptions");
  model_cmd->require_subcommand(1);
  auto* import_cmd = model_cmd->add_subcommand(
      "import",
      "Turn a Hugging Face config.json into a scenario's inline /model object (dense and MoE "
      "families; printed, or written with -o)");
  std::string import_path, import_name, import_output;
  import_cmd->preparse_callback([&](size_t) {
    import_cmd->add_option("config", import_path, "config.json of the model")->required();
    import_cmd->add_option("--name", import_name,
                           "Name shown in results (default: the config's folder name)");
    import_cmd->add_option("-o,--output", import_output, "Write the model JSON here");
  });

  CompareCommand compare_cmd(app);
  SweepCommand sweep_cmd(app);
  CapacityCommand capacity_cmd(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11's own codes (104-109) and multi-line text would break the exit-2 contract.
    print_error("error: ", e.what());
    return 2;
  }

  try {
    if (list_cmd->parsed()) return list(what);
    if (validate_cmd->parsed()) {
      const auto tables = run_validation(data_dir);
      if (!validate_output.empty())
        write_file_atomically(validate_output, validation_json(tables).dump(1) + "\n");
      fmt::print("{}", validation_report(tables, validate_rows));
      return 0;
    }
    if (import_cmd->parsed()) {
      if (import_name.empty())
        import_name = std::filesystem::absolute(import_path).parent_path().filename().string();
      const ImportedModel imported =
          import_hf_config(read_json_file(import_path), import_path, import_name);
      for (const auto& note : imported.notes) fmt::print(stderr, "note: {}\n", note);
      const std::string text = imported.model.dump(2) + "\n";
      if (import_output.empty())
        fmt::print("{}", text);
      else
        write_file_atomically(import_output, text);
      return 0;
    }
    if (compare_cmd.parsed()) return compare_cmd.run(joined_command_line(argc, argv));
    if (sweep_cmd.parsed()) return sweep_cmd.run();
    if (capacity_cmd.parsed()) return capacity_cmd.run(joined_command_line(argc, argv));
    RunOptions options;
    if (seed_text) options.seed = parse_seed(*seed_text);
    check_output_path("-o", output_path);
    check_output_path("--requests-out", requests_out_path);
    options.overrides = overrides;
    options.command_line = joined_command_line(argc, argv);
    options.kernel_db = kernel_db;
    options.exact_steps = exact_steps;
    const auto start = std::chrono::steady_clock::now();
    // Written to PATH.tmp and renamed on success, as the result is.
    std::ofstream requests_out;
    const std::string requests_staged =
        requests_out_path.empty() ? std::string() : staging_path(requests_out_path);
    if (!requests_out_path.empty()) {
      requests_out.open(requests_staged, std::ios::binary);
      if (!requests_out) throw InputError(fmt::format("{}: cannot write", requests_out_path));
      options.requests_out = &requests_out;
    }
    // The result's request records go straight into the output as requests complete.
    std::optional<ResultWriter> result_out;
    if (!output_path.empty() && requests_out_path.empty()) {
      result_out.emplace(output_path);
      options.result_requests_out = [&result_out]() -> std::ostream& {
        return result_out->begin_requests();
      };
    }
    ProgressBar progress(progress_wanted(quiet), "servesim run");
    if (progress.enabled()) {
      const RunSizeHint hint = estimate_run_size_file(scenario_path, overrides);
      options.on_progress = [&progress, hint](const RunProgress& p) { progress.update(p, hint); };
    }
    const RunOutput out = run_scenario_file(scenario_path, options);
    progress.finish();
    if (!requests_out_path.empty()) {
      requests_out.close();
      if (!requests_out) throw InputError(fmt::format("{}: write failed", requests_out_path));
      commit_staged(requests_staged, requests_out_path);
    }
    if (result_out) {
      result_out->finish(out.result, out.streamed_requests);
    } else if (output_path == "-") {
      const std::string text = result_text(out.result);
      std::fwrite(text.data(), 1, text.size(), stdout);
    } else if (!output_path.empty()) {
      write_file_atomically(output_path, result_text(out.result));
    }
    if (stats) {
      RunCost cost;
      cost.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      cost.simulated_s = out.simulated_s;
      cost.events = out.events;
      cost.peak_rss_bytes = peak_rss_bytes();
      fmt::print(stderr, "{}\n", format_run_cost(cost));
    }
    if (!quiet) fmt::print(output_path == "-" ? stderr : stdout, "{}", out.summary_table);
    return 0;
  } catch (const InputError& e) {
    print_error("error: ", e.what());
    remove_partial(requests_out_path);
    return 2;
  } catch (const InvariantError& e) {
    print_error("internal error: ", e.what());
    remove_partial(requests_out_path);
    return 3;
  } catch (const std::exception& e) {
    // Input that slipped past validation, or a bug: either way loud, one line, no file.
    print_error("internal error: unexpected: ", e.what());
    remove_partial(requests_out_path);
    return 3;
  }
}

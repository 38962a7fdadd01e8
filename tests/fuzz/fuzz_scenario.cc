// The scenario loader on arbitrary bytes, and a short run of whatever it accepts. Bad input must
// end in InputError (exit 2 in the command line); anything else escaping — a crash, a sanitizer
// report, an InvariantError from a run's conservation checks — is a finding.
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "run/run.h"
#include "run/scenario.h"
#include "sim/error.h"

namespace {

/// Whether a run of `s` is short enough to make per input: a few dozen requests from a
/// generator (a trace's length cannot be known without reading it).
bool short_enough(const servesim::Scenario& s) {
  const nlohmann::json& w = s.workload.json;
  auto small = [&](const char* key, int64_t limit) {
    return w.contains(key) && w[key].is_number_integer() && w[key].get<int64_t>() <= limit;
  };
  const std::string kind = w.value("kind", "");
  if (kind == "poisson") return small("requests", 64) && !w.contains("duration_s");
  if (kind == "closed_loop") return small("concurrency", 16) && small("requests", 64);
  if (kind == "sessions") return small("sessions", 8) && small("turns", 8);
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  servesim::fuzz::InputFile file(data, size, ".json");
  try {
    const servesim::Scenario s = servesim::parse_scenario_file(file.path(), {});
    if (!short_enough(s)) return 0;
    servesim::RunOptions options;
    options.command_line = "fuzz";
    servesim::run_scenario(s, options);
  } catch (const servesim::InputError&) {
    // A located message: the expected outcome for bad input.
  }
  return 0;
}

// `--set POINTER=VALUE` overrides on arbitrary text, applied to a shipped scenario and read by the
// loader: each line of the input is one override, as the command line would pass them.
#include <cstdint>
#include <string>
#include <vector>

#include "run/scenario.h"
#include "run/scenario_file.h"
#include "sim/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::json base =
      servesim::read_json_file(SERVESIM_SOURCE_DIR "/scenarios/seed_q11_four_node.json");
  servesim::ScenarioOptions options;
  const std::string text(reinterpret_cast<const char*>(data), size);
  size_t begin = 0;
  while (begin <= text.size() && options.overrides.size() < 16) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    options.overrides.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  try {
    servesim::parse_scenario(base, "q11.json", SERVESIM_SOURCE_DIR "/scenarios", options);
  } catch (const servesim::InputError&) {
  }
  return 0;
}

// The Azure CSV and Mooncake JSONL readers on arbitrary bytes, read to the end: each row either
// becomes a request or an InputError naming the file and line.
#include <cstdint>

#include "fuzz_support.h"
#include "sim/error.h"
#include "traces/trace_streams.h"

namespace {

void read_all(servesim::ArrivalStream& stream) {
  int64_t rows = 0;
  while (auto spec = stream.next()) {
    // What every reader promises of a request it returns.
    if (spec->prompt_tokens < 1 || spec->output_tokens < 1) __builtin_trap();
    if (++rows > 100000) break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  servesim::fuzz::InputFile file(data, size, ".trace");
  servesim::TraceReplay replay;
  try {
    servesim::AzureCsvStream azure(file.path(), replay);
    read_all(azure);
  } catch (const servesim::InputError&) {
  }
  try {
    servesim::MooncakeJsonlStream mooncake(file.path(), replay);
    read_all(mooncake);
  } catch (const servesim::InputError&) {
  }
  return 0;
}

#pragma once
// The cost-model tests' toy GPU: round peaks (100 TFLOPS bf16, 1 TB/s, 80 GB) so that each term
// can be checked by hand, running Llama-2-7B.

#include "models/cost_model.h"
#include "models/llm.h"

namespace servesim::testing {

inline CostModelConfig toy_config() {
  CostModelConfig c;
  c.gpu.name = "toy";
  c.gpu.memory_bytes = 80e9;
  c.gpu.bf16_flops_per_s = 100e12;
  c.gpu.hbm_bandwidth_bytes_per_s = 1e12;
  c.model = *find_model("Llama-2-7B");
  return c;
}

}  // namespace servesim::testing

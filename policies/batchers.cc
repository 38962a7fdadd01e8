#include "policies/batchers.h"

#include "policies/continuous_batcher.h"

namespace servesim {

void register_builtin_batchers(BatcherRegistry& registry) {
  registry.add("continuous",
               "iteration-level batching with chunked prefill and recompute preemption "
               "(keys: max_num_seqs, max_num_batched_tokens, chunked_prefill)",
               [](JsonObject& config) {
                 ContinuousBatcherConfig c;
                 c.max_num_seqs = config.get_or("max_num_seqs", c.max_num_seqs);
                 c.max_num_batched_tokens =
                     config.get_or("max_num_batched_tokens", c.max_num_batched_tokens);
                 c.chunked_prefill = config.get_or("chunked_prefill", c.chunked_prefill);
                 if (c.max_num_seqs <= 0) config.at("max_num_seqs").fail("must be > 0");
                 if (c.max_num_batched_tokens <= 0)
                   config.at("max_num_batched_tokens").fail("must be > 0");
                 return std::make_unique<ContinuousBatcher>(c);
               },
               {"max_num_seqs", "max_num_batched_tokens", "chunked_prefill"});
}

}  // namespace servesim

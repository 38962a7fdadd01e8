#include "policies/batchers.h"

#include "policies/continuous_batcher.h"
#include "policies/static_batcher.h"

namespace servesim {

void register_builtin_batchers(BatcherRegistry& registry) {
  registry.add("continuous",
               "iteration-level batching with chunked prefill and recompute preemption "
               "(keys: max_num_seqs, max_num_batched_tokens, chunked_prefill, prefill_priority, "
               "reserve_full_output, batch_wait_timeout_iters, batch_wait_max_tokens_ratio)",
               [](JsonObject& config) {
                 ContinuousBatcherConfig c;
                 c.max_num_seqs = config.get_or("max_num_seqs", c.max_num_seqs);
                 c.max_num_batched_tokens =
                     config.get_or("max_num_batched_tokens", c.max_num_batched_tokens);
                 c.chunked_prefill = config.get_or("chunked_prefill", c.chunked_prefill);
                 c.prefill_priority = config.get_or("prefill_priority", c.prefill_priority);
                 c.reserve_full_output =
                     config.get_or("reserve_full_output", c.reserve_full_output);
                 if (auto x = config.maybe("batch_wait_timeout_iters"))
                   c.batch_wait_timeout_iters = x->int_in_range(0, 1 << 20);
                 if (auto x = config.maybe("batch_wait_max_tokens_ratio"))
                   c.batch_wait_max_tokens_ratio = x->number_in_range(0.0, 1.0);
                 if (c.max_num_seqs <= 0) config.at("max_num_seqs").fail("must be > 0");
                 if (c.max_num_batched_tokens <= 0)
                   config.at("max_num_batched_tokens").fail("must be > 0");
                 return std::make_unique<ContinuousBatcher>(c);
               },
               {"max_num_seqs", "max_num_batched_tokens", "chunked_prefill", "prefill_priority",
                "reserve_full_output", "batch_wait_timeout_iters", "batch_wait_max_tokens_ratio"});
  registry.add("static",
               "request-level batching: wait for batch_size requests or fill_timeout_s, run the "
               "batch to completion with no joins (keys: batch_size, fill_timeout_s)",
               [](JsonObject& config) {
                 StaticBatcherConfig c;
                 if (auto b = config.maybe("batch_size")) c.batch_size = b->positive_int();
                 if (auto t = config.maybe("fill_timeout_s"))
                   c.fill_timeout = Time::from_s(t->seconds());
                 return std::make_unique<StaticBatcher>(c);
               },
               {"batch_size", "fill_timeout_s"});
}

}  // namespace servesim

// A replica's KV memory: blocks per request, the prefix cache, offload to host memory, recompute
// preemption, and what a failure leaves of it (nothing).
#include <algorithm>
#include <cmath>

#include "models/instance.h"

namespace servesim {

double Instance::block_bytes_per_gpu() const {
  return memory_.kv_bytes_per_token * static_cast<double>(config_.block_tokens);
}

int64_t Instance::blocks_per_hash(const Request& r) const {
  const int64_t bt = kv_.block_tokens();
  if (!config_.kv_policy.prefix_caching || r.spec.prefix_block_hashes.empty() ||
      r.spec.prefix_block_tokens <= 0 || r.spec.prefix_block_tokens % bt != 0)
    return 0;
  return r.spec.prefix_block_tokens / bt;
}

void Instance::lookup_prefix(Request* r) {
  if (r->prefix_looked_up) return;
  r->prefix_looked_up = true;
  const int64_t per_hash = blocks_per_hash(*r);
  if (per_hash == 0 || r->computed_tokens > 0) return;
  const auto& hashes = r->spec.prefix_block_hashes;
  // At least one prompt token must run, to produce the logits of the next token.
  const int64_t usable = (r->prefill_target_tokens() - 1) / r->spec.prefix_block_tokens;
  const int64_t n = std::min(prefix_cache_.match(hashes), usable);
  if (n <= 0) return;
  prefix_cache_.pin(hashes, n);
  r->shared_prefix_blocks = n * per_hash;
  r->kv_blocks = r->shared_prefix_blocks;
  outstanding_tokens_ -= outstanding_of(*r);
  r->computed_tokens = n * r->spec.prefix_block_tokens;
  outstanding_tokens_ += outstanding_of(*r);
  prefix_hit_tokens_ += r->computed_tokens;
}

void Instance::keep_own_kv(Request* r, int64_t blocks) {
  SERVESIM_CHECK(prefix_cache_.own_blocks(r->kept_kv_handle, r->id) == 0,
                 "request {} cached its own KV twice", r->id);
  r->kept_kv_handle = prefix_cache_.insert_own(r->id, blocks);
}

void Instance::return_kept_kv(Request* r) {
  if (r->resumed_blocks == 0) return;
  SERVESIM_CHECK(r->kv_blocks == r->resumed_blocks, "request {} grew past its kept KV in waiting",
                 r->id);
  if (r->host_blocks > 0) {
    // Its oldest blocks went to host for a growth that still failed: without them the rest is
    // no prefix, so it all goes and the prompt is computed again.
    host_kv_.give_back(r->host_blocks);
    kv_.give_back(r->kv_blocks - r->host_blocks);
    r->host_blocks = 0;
  } else {
    // Back to the cache, evictable again from its end.
    keep_own_kv(r, r->kv_blocks);
  }
  preempted_kv_reused_tokens_ -= r->computed_tokens;
  outstanding_tokens_ -= outstanding_of(*r);
  r->computed_tokens = r->kv_blocks = r->resumed_blocks = 0;
  outstanding_tokens_ += outstanding_of(*r);
}

void Instance::resume_kept_kv(Request* r) {
  if (r->kept_kv_handle < 0) return;
  const int64_t blocks = prefix_cache_.take_own(r->kept_kv_handle, r->id);
  r->kept_kv_handle = -1;
  if (blocks == 0) return;
  SERVESIM_CHECK(r->computed_tokens == 0 && r->kv_blocks == 0,
                 "request {} found its preempted KV while holding KV", r->id);
  // At least one token must run, to produce the logits of the next token.
  const int64_t bt = kv_.block_tokens();
  const int64_t kept = std::min(blocks, (r->prefill_target_tokens() - 1) / bt);
  kv_.give_back(blocks - kept);
  if (kept <= 0) return;
  outstanding_tokens_ -= outstanding_of(*r);
  r->kv_blocks = r->resumed_blocks = kept;
  r->computed_tokens = kept * bt;
  outstanding_tokens_ += outstanding_of(*r);
  preempted_kv_reused_tokens_ += r->computed_tokens;
}

void Instance::release_kv(Request* r) {
  const int64_t per_hash = blocks_per_hash(*r);
  int64_t adopted = 0;
  if (per_hash > 0) {
    const auto& hashes = r->spec.prefix_block_hashes;
    const int64_t shared_hashes = r->shared_prefix_blocks / per_hash;
    prefix_cache_.unpin(hashes, shared_hashes);
    // Full hashed blocks this request computed in VRAM join the cache (host blocks do not).
    const int64_t bt = kv_.block_tokens();
    const int64_t full_hashes = std::min<int64_t>(static_cast<int64_t>(hashes.size()),
                                                  r->computed_tokens / (per_hash * bt));
    for (int64_t i = shared_hashes; i < full_hashes; ++i) {
      if (i * per_hash < r->shared_prefix_blocks + r->host_blocks) continue;
      if (prefix_cache_.insert(hashes[static_cast<size_t>(i)], per_hash)) adopted += per_hash;
    }
  }
  const int64_t private_blocks = r->kv_blocks - r->shared_prefix_blocks - r->host_blocks;
  kv_.give_back(private_blocks - adopted);
  host_kv_.give_back(r->host_blocks);
  host_freed_bytes_per_gpu_ += static_cast<double>(r->host_blocks) * block_bytes_per_gpu();
  r->kv_blocks = r->shared_prefix_blocks = r->host_blocks = 0;
}

bool Instance::reclaim(int64_t missing_blocks, const int64_t* growing) {
  // Without a prefix cache or a host tier the cache holds only what preempted requests kept,
  // none of it pinned. As vLLM's allocate_slots (v1/core/kv_cache_manager.py) counts cached
  // blocks as free and evicts only to allocate, a growth the cache cannot cover evicts nothing.
  if (!config_.kv_policy.prefix_caching && config_.kv_policy.mode != KvMode::kHostOffload &&
      missing_blocks > prefix_cache_.blocks())
    return false;
  int64_t freed = 0;
  while (freed < missing_blocks) {
    const int64_t blocks = prefix_cache_.evict(missing_blocks - freed);
    if (blocks == 0) break;
    kv_.give_back(blocks);
    freed += blocks;
  }
  if (freed > 0) return true;
  if (!config_.kv_policy.prefix_caching)  // nothing is pinned: skip the scan of the queue
    return config_.kv_policy.mode == KvMode::kHostOffload && offload(missing_blocks, growing);
  // Cached prefixes pinned by requests still waiting give way, the newest first: they are
  // looked up again when those requests come up. Only the request being admitted keeps its
  // pins. Without this, waiting requests could pin the pool and nothing could run; sparing
  // the head whatever was grown once let its pins force a running request out step after
  // step, each time losing the chunk it had computed past its cached prefix.
  for (size_t i = waiting_.size(); i-- > 0;) {
    Request* w = waiting_[i];
    if (w->shared_prefix_blocks == 0 || &w->kv_blocks == growing) continue;
    prefix_cache_.unpin(w->spec.prefix_block_hashes, w->shared_prefix_blocks / blocks_per_hash(*w));
    prefix_hit_tokens_ -= w->computed_tokens;
    outstanding_tokens_ -= outstanding_of(*w);
    w->computed_tokens = w->kv_blocks = w->shared_prefix_blocks = 0;
    outstanding_tokens_ += outstanding_of(*w);
    w->prefix_looked_up = false;
    return true;  // now evictable: the caller asks again
  }
  return config_.kv_policy.mode == KvMode::kHostOffload && offload(missing_blocks, growing);
}

bool Instance::offload(int64_t missing_blocks, const int64_t* growing) {
  (void)missing_blocks;  // a whole request's cold KV moves at once, as a vLLM swap does
  const int64_t bt = kv_.block_tokens();
  const int64_t window_blocks = config_.kv_policy.fetch == OffloadFetch::kHotWindow
                                    ? kv_.blocks_for(config_.kv_policy.hot_window_tokens)
                                    : 0;
  // Cold blocks: full, private, in VRAM, older than the hot window.
  auto cold = [&](const Request* q) {
    const int64_t full_private = q->computed_tokens / bt - q->shared_prefix_blocks - q->host_blocks;
    return std::max<int64_t>(0, full_private - window_blocks);
  };
  Request* victim = nullptr;
  for (Request* q : running_)
    if (cold(q) > 0 && (!victim || cold(q) > cold(victim))) victim = q;
  // The waiting head being admitted may hold KV itself (what it kept when preempted): its own
  // cold blocks go to host too, or a prompt longer than VRAM could never resume.
  if (!waiting_.empty() && &waiting_.front()->kv_blocks == growing) {
    Request* head = waiting_.front();
    if (cold(head) > 0 && (!victim || cold(head) > cold(victim))) victim = head;
  }
  if (!victim) return false;
  const int64_t n = std::min(cold(victim), host_kv_.free_blocks());
  if (n <= 0) return false;
  host_kv_.take(n);
  kv_.give_back(n);
  victim->host_blocks += n;
  pending_offload_blocks_ += n;
  offloaded_bytes_per_gpu_ += static_cast<double>(n) * block_bytes_per_gpu();
  return true;
}

void Instance::grow_decode_set(IterationPlan& plan) {
  kv_.take(decode_set_growth_blocks());
  plan.decode_set_members = decode_set_.size();
}

void Instance::preempt(Request* r) {
  if (DecodeSet::is_member(*r)) {
    decode_set_.leave(*r);
    outstanding_tokens_ += outstanding_of(*r);
  }
  running_.remove(*r);
  // A decoding request's KV may move to another replica rather than be recomputed; the blocks
  // are freed here at once, as the copy leaves them (the approximation of a swap-out).
  if (r->in_decode && observer_.on_migrate(*r)) {
    release_kv(r);
    outstanding_tokens_ -= outstanding_of(*r);
    ++r->preemptions;
    ++preemptions_;
    ++migrations_;
    return;
  }
  // What the engine's cache keeps of the context: its full blocks, all in VRAM and its own (a
  // request whose prompt is hashed leaves the prompt to the prefix cache, as release_kv does).
  int64_t cached_blocks = 0;
  const PreemptedKv kept = config_.kv_policy.preempted_kv;
  if (kept != PreemptedKv::kNone && r->host_blocks == 0 && blocks_per_hash(*r) == 0) {
    const int64_t tokens = kept == PreemptedKv::kPrompt
                               ? std::min(r->computed_tokens, r->spec.prompt_tokens)
                               : r->computed_tokens;
    cached_blocks = std::min(tokens / kv_.block_tokens(), r->kv_blocks);
  }
  release_kv(r);
  if (cached_blocks > 0) {
    kv_.take(cached_blocks);
    keep_own_kv(r, cached_blocks);
  }
  r->resumed_blocks = 0;
  r->prefix_looked_up = false;
  outstanding_tokens_ -= outstanding_of(*r);
  r->computed_tokens = 0;
  r->in_decode = false;
  outstanding_tokens_ += outstanding_of(*r);
  ++r->preemptions;
  ++preemptions_;
  waiting_.push_front(r);
}

void Instance::set_pace(const CostModelConfig& cost, double slowdown) {
  if (busy_ && steps_.steps > 1) truncate_stretch();
  cost_ = cost;
  gemm_cache_ = GemmTimeCache{};  // times of the old configuration
  slowdown_ = slowdown;
  decode_slope_.clear();  // slopes priced at the old pace
}

int64_t Instance::fail(std::vector<Request*>& evicted) {
  // Flows in flight would call back into the lost iteration (the loader refuses the mix).
  SERVESIM_CHECK(step_traffic_ == nullptr, "instance {} failed with its step traffic on flows",
                 config_.name);
  available_ = false;
  if (wakeup_.valid()) {
    sim_.cancel(wakeup_);
    wakeup_ = EventId{};
  }
  if (busy_) {
    sim_.cancel(done_event_);
    // Steps that ended before now happened; the one in flight is lost. A fault precedes an
    // iteration's end at the same instant (Phase::kFault), so a step ending now is lost too.
    const int64_t done = planned_steps_ending_before(sim_.now().ns);
    if (steps_.steps > 1 && done >= 1) {
      cut_steps(done);
      apply_iteration();
    } else {
      busy_ = false;
      busy_time_ += sim_.now() - iteration_start_;
      stage_busy_s_ += (sim_.now() - iteration_start_).to_s() *
                       static_cast<double>(step_cost_.microbatches) / config_.pp;
      // The lost step's transfers had started: they count as sent and received.
      priced_gpu_to_host_bytes_ += step_cost_.gpu_to_host_bytes_per_gpu;
      priced_host_to_gpu_bytes_ += step_cost_.host_to_gpu_bytes_per_gpu;
      tp_bytes_per_gpu_ += step_cost_.tp_bytes_per_gpu;
      pp_bytes_per_hop_ += step_cost_.pp_bytes_per_hop;
      ep_intra_bytes_per_gpu_ += step_cost_.ep_intra_bytes_per_gpu;
      ep_inter_bytes_per_gpu_ += step_cost_.ep_inter_bytes_per_gpu;
    }
  }
  // Offload writes planned but not yet priced happened before the failure.
  priced_gpu_to_host_bytes_ += static_cast<double>(pending_offload_blocks_) * block_bytes_per_gpu();
  pending_offload_blocks_ = 0;
  int64_t lost_tokens = 0;
  auto evict = [&](Request* r) {
    if (DecodeSet::is_member(*r)) decode_set_.leave(*r);
    lost_tokens += r->computed_tokens;
    host_freed_bytes_per_gpu_ += static_cast<double>(r->host_blocks) * block_bytes_per_gpu();
    r->computed_tokens = r->kv_blocks = r->shared_prefix_blocks = r->host_blocks = 0;
    r->in_decode = false;
    r->prefix_looked_up = false;
    r->kept_kv_handle = -1;
    r->resumed_blocks = 0;
    evicted.push_back(r);
  };
  for (Request* r : running_) evict(r);
  for (Request* r : waiting_) evict(r);
  running_.clear();
  waiting_.clear();
  plan_.clear();
  steps_.steps = 0;
  stretch_left_sorted_.clear();
  stretch_left_prefix_.clear();
  outstanding_tokens_ = 0;
  prefix_cache_.clear();
  kv_.clear();
  host_kv_.clear();
  return lost_tokens;
}

void Instance::recover() {
  available_ = true;
}

}  // namespace servesim

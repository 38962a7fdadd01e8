#pragma once
/// Paged KV cache of one replica: a pool of fixed-size blocks (vLLM's PagedAttention layout).
/// A request holds ceil(tokens / block_tokens) blocks; the pool never hands out more blocks
/// than it has, and says so loudly if asked to. When the pool runs short it first asks its
/// reclaimer (the replica's KV policy: evict cached prefixes, offload to host) for room.

#include <algorithm>
#include <cstdint>
#include <functional>

#include "sim/error.h"

namespace servesim {

/// How a replica keeps KV (/policies/kv/name).
enum class KvMode : uint8_t {
  kGpuOnly,     ///< paged KV in VRAM; preempt (recompute) when it runs out
  kNoCache,     ///< no KV cache: every step recomputes the whole context (seed Q8)
  kHostOffload  ///< VRAM, then host DRAM over PCIe when VRAM runs out (seed Q9, Q10)
};

/// How offloaded KV comes back for attention (/policies/kv/fetch).
enum class OffloadFetch : uint8_t {
  kNaive,     ///< all host-resident KV copied to the GPU before each step, then compute
  kPrefetch,  ///< layer l+1's KV copied while layer l computes
  kHotWindow  ///< as prefetch, but the most recent hot_window_tokens never leave the GPU
};

/// What of a request's KV stays cached when it is preempted for recompute, to be found again
/// when it is rescheduled (the engine's prefix cache holds it; /engine_overrides/preempted_kv).
enum class PreemptedKv : uint8_t {
  kNone,    ///< nothing: the whole context is recomputed
  kPrompt,  ///< the prompt's full blocks (SGLang: the radix tree keeps the prompt)
  kAll      ///< every full block, prompt and output (vLLM V1 hashes output blocks too)
};

struct KvPolicyConfig {
  KvMode mode = KvMode::kGpuOnly;
  PreemptedKv preempted_kv = PreemptedKv::kNone;
  /// Finished (and preempted) requests leave their prompt's hashed blocks in VRAM for reuse by
  /// requests with the same prefix; unreferenced cached blocks are evicted least recently used.
  bool prefix_caching = false;
  OffloadFetch fetch = OffloadFetch::kNaive;
  int64_t hot_window_tokens = 0;
  /// Share of the node's host memory the replica may fill with offloaded KV.
  double host_memory_fraction = 0.5;
};

class KvBlockPool {
 public:
  /// Called with the number of blocks missing and the holding being grown (which the
  /// reclaimer must leave alone); returns true if it freed any or made some evictable.
  using Reclaimer = std::function<bool(int64_t missing_blocks, const int64_t* growing)>;

  KvBlockPool(int64_t total_blocks, int64_t block_tokens)
      : total_blocks_(total_blocks), block_tokens_(block_tokens) {}

  void set_reclaimer(Reclaimer reclaimer) { reclaimer_ = std::move(reclaimer); }

  int64_t blocks_for(int64_t tokens) const { return (tokens + block_tokens_ - 1) / block_tokens_; }
  /// Grows a holding of `held_blocks` to cover `tokens`; false (nothing changes) if the pool
  /// lacks the blocks even after reclaiming.
  bool try_grow(int64_t& held_blocks, int64_t tokens) {
    const int64_t need = blocks_for(tokens) - held_blocks;
    if (need <= 0) return true;
    while (need > free_blocks())
      if (!reclaimer_ || !reclaimer_(need - free_blocks(), &held_blocks)) return false;
    take(need);
    held_blocks += need;
    return true;
  }
  void release(int64_t& held_blocks) {
    give_back(held_blocks);
    held_blocks = 0;
  }
  /// Physical block accounting for holdings kept outside a request's count (cached prefixes,
  /// blocks moved to another tier).
  /// Asks the reclaimer for `missing_blocks` more free blocks; true if it freed any or made
  /// some evictable (ask again), false if it has nothing to give.
  bool reclaim(int64_t missing_blocks) {
    return reclaimer_ && missing_blocks > 0 && reclaimer_(missing_blocks, nullptr);
  }
  void take(int64_t blocks) {
    used_blocks_ += blocks;
    if (used_blocks_ > peak_blocks_) peak_blocks_ = used_blocks_;
    SERVESIM_CHECK(used_blocks_ <= total_blocks_, "KV blocks over capacity: {} > {}", used_blocks_,
                   total_blocks_);
  }
  /// A holding that existed for a moment without passing through take() (a step's growth
  /// that a preemption then undid) counts toward the peak.
  void note_in_use(int64_t used_blocks) {
    SERVESIM_CHECK(used_blocks <= total_blocks_, "KV blocks over capacity: {} > {}", used_blocks,
                   total_blocks_);
    peak_blocks_ = std::max(peak_blocks_, used_blocks);
  }
  void give_back(int64_t blocks) {
    SERVESIM_CHECK(blocks >= 0 && blocks <= used_blocks_, "releasing {} blocks with {} in use",
                   blocks, used_blocks_);
    used_blocks_ -= blocks;
  }

  /// Every block is free again (the memory behind the pool was lost); the peak is kept.
  void clear() { used_blocks_ = 0; }

  int64_t total_blocks() const { return total_blocks_; }
  int64_t used_blocks() const { return used_blocks_; }
  int64_t free_blocks() const { return total_blocks_ - used_blocks_; }
  int64_t peak_blocks() const { return peak_blocks_; }
  int64_t block_tokens() const { return block_tokens_; }
  int64_t capacity_tokens() const { return total_blocks_ * block_tokens_; }

 private:
  int64_t total_blocks_;
  int64_t block_tokens_;
  int64_t used_blocks_ = 0;
  int64_t peak_blocks_ = 0;
  Reclaimer reclaimer_;
};

}  // namespace servesim

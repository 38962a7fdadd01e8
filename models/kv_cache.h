#pragma once
/// Paged KV cache of one replica: a pool of fixed-size blocks (vLLM's PagedAttention layout).
/// A request holds ceil(tokens / block_tokens) blocks; the pool never hands out more blocks
/// than it has, and says so loudly if asked to.

#include <cstdint>

#include "sim/error.h"

namespace servesim {

class KvBlockPool {
 public:
  KvBlockPool(int64_t total_blocks, int64_t block_tokens)
      : total_blocks_(total_blocks), block_tokens_(block_tokens) {}

  int64_t blocks_for(int64_t tokens) const { return (tokens + block_tokens_ - 1) / block_tokens_; }
  /// Grows a holding of `held_blocks` to cover `tokens`; false (nothing changes) if the pool
  /// lacks the blocks.
  bool try_grow(int64_t& held_blocks, int64_t tokens) {
    const int64_t need = blocks_for(tokens) - held_blocks;
    if (need <= 0) return true;
    if (need > free_blocks()) return false;
    used_blocks_ += need;
    held_blocks += need;
    if (used_blocks_ > peak_blocks_) peak_blocks_ = used_blocks_;
    SERVESIM_CHECK(used_blocks_ <= total_blocks_, "KV blocks over capacity: {} > {}", used_blocks_,
                   total_blocks_);
    return true;
  }
  void release(int64_t& held_blocks) {
    SERVESIM_CHECK(held_blocks <= used_blocks_, "releasing {} blocks with {} in use", held_blocks,
                   used_blocks_);
    used_blocks_ -= held_blocks;
    held_blocks = 0;
  }

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
};

}  // namespace servesim

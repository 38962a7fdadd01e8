#pragma once
/// Prefix cache of one replica (vLLM automatic prefix caching, SGLang RadixAttention reduced
/// to block hashes): KV blocks named by the hash of their tokens and everything before them
/// (Mooncake `hash_ids`), shared by every request whose prompt starts with them. A block is
/// pinned while a request uses it; unpinned blocks stay cached until evicted, least recently
/// used first. The cache owns its blocks' share of the KV pool. It also keeps what a preempted
/// request computed, named by the request, until the request comes back or the space is needed.

#include <algorithm>
#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "sim/error.h"

namespace servesim {

class PrefixCache {
 public:
  /// How many leading blocks of `hashes` are cached.
  int64_t match(const std::vector<uint64_t>& hashes) const {
    int64_t n = 0;
    while (n < static_cast<int64_t>(hashes.size()) && entries_.count(hashes[n])) ++n;
    return n;
  }
  /// Pins the first `n` blocks of `hashes` (all cached).
  void pin(const std::vector<uint64_t>& hashes, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      Entry& e = entries_.at(hashes[i]);
      if (e.pins++ == 0) lru_.erase(e.lru);
    }
  }
  /// Unpins them; a block nobody pins becomes the most recently used evictable one.
  void unpin(const std::vector<uint64_t>& hashes, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      Entry& e = entries_.at(hashes[i]);
      if (--e.pins == 0) e.lru = lru_.insert(lru_.end(), Key{hashes[i], false});
    }
  }
  /// Adopts the `blocks` KV blocks named by `hash` (unpinned); false if the hash is already
  /// cached (the caller frees its copy).
  bool insert(uint64_t hash, int64_t blocks) {
    auto [it, added] = entries_.try_emplace(hash);
    if (!added) return false;
    it->second.blocks = blocks;
    it->second.lru = lru_.insert(lru_.end(), Key{hash, false});
    blocks_ += blocks;
    return true;
  }
  /// Adopts the leading `blocks` KV blocks of preempted request `request_id`'s context, its
  /// own (named by the request, not by a prompt hash), as the most recently used entry. As
  /// vLLM frees a request's blocks last first, eviction takes them from the entry's end, so
  /// what is left is always a prefix of the context.
  void insert_own(uint64_t request_id, int64_t blocks) {
    auto [it, added] = own_.try_emplace(request_id);
    SERVESIM_CHECK(added, "request {} cached its own KV twice", request_id);
    it->second.blocks = blocks;
    it->second.lru = lru_.insert(lru_.end(), Key{request_id, true});
    blocks_ += blocks;
  }
  /// Removes request `request_id`'s own entry and returns the blocks left in it (0: none),
  /// which pass to the request.
  int64_t take_own(uint64_t request_id) {
    auto it = own_.find(request_id);
    if (it == own_.end()) return 0;
    const int64_t blocks = it->second.blocks;
    lru_.erase(it->second.lru);
    own_.erase(it);
    blocks_ -= blocks;
    return blocks;
  }
  /// Frees blocks from the least recently used unpinned entry: a prompt block's entry whole,
  /// an own entry from its end, up to `wanted_blocks` (at least one). Returns the KV blocks
  /// freed (0: nothing is evictable), which the caller returns to the pool.
  int64_t evict(int64_t wanted_blocks) {
    if (lru_.empty()) return 0;
    const Key head = lru_.front();
    int64_t freed = 0;
    if (head.own) {
      auto it = own_.find(head.key);
      freed = std::min(it->second.blocks, std::max<int64_t>(1, wanted_blocks));
      it->second.blocks -= freed;
      if (it->second.blocks == 0) {
        own_.erase(it);
        lru_.pop_front();
      }
    } else {
      auto it = entries_.find(head.key);
      freed = it->second.blocks;
      entries_.erase(it);
      lru_.pop_front();
    }
    blocks_ -= freed;
    evicted_blocks_ += freed;
    return freed;
  }
  /// Forgets every entry (the memory behind them was lost); the caller clears the pool.
  void clear() {
    entries_.clear();
    own_.clear();
    lru_.clear();
    blocks_ = 0;
  }
  /// KV blocks the cache holds (pinned or not).
  int64_t blocks() const { return blocks_; }
  int64_t evicted_blocks() const { return evicted_blocks_; }
  /// Preempted requests whose own KV the cache holds.
  size_t own_entries() const { return own_.size(); }
  /// Blocks left of request `request_id`'s own entry (0: none).
  int64_t own_blocks(uint64_t request_id) const {
    auto it = own_.find(request_id);
    return it == own_.end() ? 0 : it->second.blocks;
  }

 private:
  struct Key {
    uint64_t key;  ///< a block hash, or a request id when `own`
    bool own;
  };
  struct Entry {
    int64_t pins = 0;
    int64_t blocks = 0;
    std::list<Key>::iterator lru;
  };
  // Looked up by key only, never iterated: their order cannot reach the results.
  std::unordered_map<uint64_t, Entry> entries_;
  std::unordered_map<uint64_t, Entry> own_;
  std::list<Key> lru_;
  int64_t blocks_ = 0;
  int64_t evicted_blocks_ = 0;
};

}  // namespace servesim

#pragma once
/// Prefix cache of one replica (vLLM automatic prefix caching, SGLang RadixAttention reduced
/// to block hashes): KV blocks named by the hash of their tokens and everything before them
/// (Mooncake `hash_ids`), shared by every request whose prompt starts with them. A block is
/// pinned while a request uses it; unpinned blocks stay cached until evicted, least recently
/// used first. The cache owns its blocks' share of the KV pool.

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

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
      if (--e.pins == 0) e.lru = lru_.insert(lru_.end(), hashes[i]);
    }
  }
  /// Adopts the `blocks` KV blocks named by `hash` (unpinned); false if the hash is already
  /// cached (the caller frees its copy).
  bool insert(uint64_t hash, int64_t blocks) {
    auto [it, added] = entries_.try_emplace(hash);
    if (!added) return false;
    it->second.blocks = blocks;
    it->second.lru = lru_.insert(lru_.end(), hash);
    blocks_ += blocks;
    return true;
  }
  /// Drops the least recently used unpinned entry; returns the KV blocks it held (0: nothing
  /// is evictable), which the caller returns to the pool.
  int64_t evict_one() {
    if (lru_.empty()) return 0;
    auto it = entries_.find(lru_.front());
    const int64_t freed = it->second.blocks;
    entries_.erase(it);
    lru_.pop_front();
    blocks_ -= freed;
    evicted_blocks_ += freed;
    return freed;
  }
  /// Forgets every entry (the memory behind them was lost); the caller clears the pool.
  void clear() {
    entries_.clear();
    lru_.clear();
    blocks_ = 0;
  }
  /// KV blocks the cache holds (pinned or not).
  int64_t blocks() const { return blocks_; }
  int64_t evicted_blocks() const { return evicted_blocks_; }

 private:
  struct Entry {
    int64_t pins = 0;
    int64_t blocks = 0;
    std::list<uint64_t>::iterator lru;
  };
  // Looked up by hash only, never iterated: its order cannot reach the results.
  std::unordered_map<uint64_t, Entry> entries_;
  std::list<uint64_t> lru_;
  int64_t blocks_ = 0;
  int64_t evicted_blocks_ = 0;
};

}  // namespace servesim

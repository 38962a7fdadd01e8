#pragma once
/// Prefix cache of one replica (vLLM automatic prefix caching, SGLang RadixAttention reduced
/// to block hashes): KV blocks named by the hash of their tokens and everything before them
/// (Mooncake `hash_ids`), shared by every request whose prompt starts with them. A block is
/// pinned while a request uses it; unpinned blocks stay cached until evicted, least recently
/// used first. The cache owns its blocks' share of the KV pool. It also keeps what a preempted
/// request computed, named by the request, until the request comes back or the space is needed.

#include <algorithm>
#include <cstdint>
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
      if (e.pins++ == 0) {
        release_node(e.node);
        e.node = kNone;
      }
    }
  }
  /// Unpins them; a block nobody pins becomes the most recently used evictable one.
  void unpin(const std::vector<uint64_t>& hashes, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      Entry& e = entries_.at(hashes[i]);
      if (--e.pins == 0) e.node = append_node(hashes[i], false, 0);
    }
  }
  /// Adopts the `blocks` KV blocks named by `hash` (unpinned); false if the hash is already
  /// cached (the caller frees its copy).
  bool insert(uint64_t hash, int64_t blocks) {
    auto [it, added] = entries_.try_emplace(hash);
    if (!added) return false;
    it->second.blocks = blocks;
    it->second.node = append_node(hash, false, 0);
    blocks_ += blocks;
    return true;
  }
  /// Adopts the leading `blocks` KV blocks of preempted request `request_id`'s context, its
  /// own (named by the request, not by a prompt hash), as the most recently used entry. As
  /// vLLM frees a request's blocks last first, eviction takes them from the entry's end, so
  /// what is left is always a prefix of the context. Returns the entry's handle, which the
  /// request keeps: with its id it finds the entry again without a lookup by key.
  int32_t insert_own(uint64_t request_id, int64_t blocks) {
    SERVESIM_CHECK(blocks > 0, "request {} cached {} blocks of its own KV", request_id, blocks);
    blocks_ += blocks;
    ++own_entries_;
    return append_node(request_id, true, blocks);
  }
  /// Removes request `request_id`'s own entry at `handle` and returns the blocks left in it (0:
  /// none, as when eviction emptied it and the handle now names nothing or another request's),
  /// which pass to the request.
  int64_t take_own(int32_t handle, uint64_t request_id) {
    if (!owns(handle, request_id)) return 0;
    const int64_t blocks = nodes_[static_cast<size_t>(handle)].blocks;
    release_node(handle);
    --own_entries_;
    blocks_ -= blocks;
    return blocks;
  }
  /// Frees blocks from the least recently used unpinned entry: a prompt block's entry whole,
  /// an own entry from its end, up to `wanted_blocks` (at least one). Returns the KV blocks
  /// freed (0: nothing is evictable), which the caller returns to the pool.
  int64_t evict(int64_t wanted_blocks) {
    if (lru_head_ == kNone) return 0;
    Node& head = nodes_[static_cast<size_t>(lru_head_)];
    int64_t freed = 0;
    if (head.own) {
      freed = std::min(head.blocks, std::max<int64_t>(1, wanted_blocks));
      head.blocks -= freed;
      if (head.blocks == 0) {
        release_node(lru_head_);
        --own_entries_;
      }
    } else {
      auto it = entries_.find(head.key);
      freed = it->second.blocks;
      entries_.erase(it);
      release_node(lru_head_);
    }
    blocks_ -= freed;
    evicted_blocks_ += freed;
    return freed;
  }
  /// Forgets every entry (the memory behind them was lost); the caller clears the pool.
  /// Handles held by requests name nothing afterwards.
  void clear() {
    entries_.clear();
    nodes_.clear();
    free_node_ = lru_head_ = lru_tail_ = kNone;
    own_entries_ = 0;
    blocks_ = 0;
  }
  /// KV blocks the cache holds (pinned or not).
  int64_t blocks() const { return blocks_; }
  int64_t evicted_blocks() const { return evicted_blocks_; }
  /// Preempted requests whose own KV the cache holds.
  size_t own_entries() const { return own_entries_; }
  /// Blocks left of request `request_id`'s own entry at `handle` (0: none).
  int64_t own_blocks(int32_t handle, uint64_t request_id) const {
    return owns(handle, request_id) ? nodes_[static_cast<size_t>(handle)].blocks : 0;
  }

 private:
  static constexpr int32_t kNone = -1;
  /// An evictable entry's place in the LRU order, in a slab whose free slots are reused, so
  /// that preemption and eviction allocate nothing once the slab has grown.
  struct Node {
    uint64_t key = 0;    ///< a block hash, or a request id when `own`
    int64_t blocks = 0;  ///< an own entry's blocks (a prompt entry's are in `entries_`)
    int32_t prev = kNone;
    int32_t next = kNone;  ///< the next newer entry, or the next free slot
    bool own = false;
    bool live = false;
  };
  struct Entry {
    int64_t pins = 0;
    int64_t blocks = 0;
    int32_t node = kNone;  ///< place in the LRU order while unpinned
  };

  bool owns(int32_t handle, uint64_t request_id) const {
    if (handle < 0 || static_cast<size_t>(handle) >= nodes_.size()) return false;
    const Node& n = nodes_[static_cast<size_t>(handle)];
    return n.live && n.own && n.key == request_id;
  }
  int32_t append_node(uint64_t key, bool own, int64_t blocks) {
    int32_t i = free_node_;
    if (i == kNone) {
      SERVESIM_CHECK(nodes_.size() < static_cast<size_t>(INT32_MAX), "prefix cache too large");
      i = static_cast<int32_t>(nodes_.size());
      nodes_.emplace_back();
    } else {
      free_node_ = nodes_[static_cast<size_t>(i)].next;
    }
    nodes_[static_cast<size_t>(i)] = Node{key, blocks, lru_tail_, kNone, own, true};
    if (lru_tail_ == kNone)
      lru_head_ = i;
    else
      nodes_[static_cast<size_t>(lru_tail_)].next = i;
    lru_tail_ = i;
    return i;
  }
  void release_node(int32_t i) {
    Node& n = nodes_[static_cast<size_t>(i)];
    (n.prev == kNone ? lru_head_ : nodes_[static_cast<size_t>(n.prev)].next) = n.next;
    (n.next == kNone ? lru_tail_ : nodes_[static_cast<size_t>(n.next)].prev) = n.prev;
    n.live = false;
    n.next = free_node_;
    free_node_ = i;
  }

  // Looked up by key only, never iterated: their order cannot reach the results.
  std::unordered_map<uint64_t, Entry> entries_;
  std::vector<Node> nodes_;
  int32_t free_node_ = kNone;
  int32_t lru_head_ = kNone;  ///< least recently used
  int32_t lru_tail_ = kNone;
  size_t own_entries_ = 0;
  int64_t blocks_ = 0;
  int64_t evicted_blocks_ = 0;
};

}  // namespace servesim

#pragma once
/// An append-only array stored in 2 MiB chunks that never move: pointers to elements stay valid
/// as it grows, growing never copies, and each chunk asks the kernel for a transparent huge
/// page. An overloaded run keeps a backlog of a hundred thousand requests and more; on 4 KiB
/// pages every first touch of a page is a fault, on a huge page one fault covers 512.

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "sim/huge_pages.h"

namespace servesim {

template <class T>
class ChunkedArray {
 public:
  static constexpr size_t kChunkBytes = kHugePageBytes;
  static constexpr size_t kPerChunk = kChunkBytes / sizeof(T);
  static_assert(kPerChunk > 0, "element larger than a chunk");

  ChunkedArray() = default;
  ChunkedArray(const ChunkedArray&) = delete;
  ChunkedArray& operator=(const ChunkedArray&) = delete;
  ~ChunkedArray() {
    clear();
    for (T* chunk : chunks_) std::free(chunk);
  }

  template <class... Args>
  T& emplace_back(Args&&... args) {
    const size_t chunk = size_ / kPerChunk;
    if (chunk == chunks_.size()) add_chunk();
    T* slot = chunks_[chunk] + size_ % kPerChunk;
    new (slot) T(std::forward<Args>(args)...);
    ++size_;
    return *slot;
  }
  void push_back(const T& value) { emplace_back(value); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) { return chunks_[i / kPerChunk][i % kPerChunk]; }
  const T& operator[](size_t i) const { return chunks_[i / kPerChunk][i % kPerChunk]; }

  /// Calls f(element) for each element in order.
  template <class F>
  void for_each(F&& f) const {
    for (size_t done = 0, c = 0; done < size_; ++c) {
      const size_t n = std::min(kPerChunk, size_ - done);
      for (size_t i = 0; i < n; ++i) f(chunks_[c][i]);
      done += n;
    }
  }

  /// Destroys every element and frees the chunks.
  void release() {
    clear();
    for (T* chunk : chunks_) std::free(chunk);
    chunks_.clear();
    chunks_.shrink_to_fit();
  }

  /// Destroys every element; the chunks stay for reuse.
  void clear() {
    if constexpr (!std::is_trivially_destructible_v<T>)
      for (size_t i = 0; i < size_; ++i) (*this)[i].~T();
    size_ = 0;
  }

 private:
  void add_chunk() { chunks_.push_back(static_cast<T*>(allocate_huge_aware(kChunkBytes))); }

  std::vector<T*> chunks_;
  size_t size_ = 0;
};

}  // namespace servesim

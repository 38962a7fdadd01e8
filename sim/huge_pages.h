#pragma once
/// Memory for large arrays in transparent huge pages. A first touch of a 4 KiB page is a page
/// fault, which costs microseconds on a virtual machine (tests/bench/bench_memory.cc); a 2 MiB
/// huge page takes one fault for 512 of them. Blocks of at least 2 MiB are taken in whole,
/// aligned 2 MiB units and advised as huge pages (a hint: ignored where they are off); smaller
/// ones come from malloc. Either kind is released with std::free; allocate_zeroed's blocks with
/// free_zeroed.

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

namespace servesim {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;

/// At least `bytes`, aligned for any object; throws std::bad_alloc when memory is short.
inline void* allocate_huge_aware(size_t bytes) {
  if (bytes < kHugePageBytes) {
    void* small = std::malloc(bytes == 0 ? 1 : bytes);
    if (small == nullptr) throw std::bad_alloc();
    return small;
  }
  const size_t rounded = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  void* block = std::aligned_alloc(kHugePageBytes, rounded);
  if (block == nullptr) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  madvise(block, rounded, MADV_HUGEPAGE);
#endif
  return block;
}

/// `bytes` of zeros that cost nothing until touched: from 64 KiB up, fresh pages mapped from
/// the kernel (a calloc from the heap would clear them all, touching every page); below, a
/// calloc. Release with free_zeroed(pointer, bytes); throws std::bad_alloc when memory is short.
void* allocate_zeroed(size_t bytes);
void free_zeroed(void* block, size_t bytes);

/// Backs the next `bytes` of the malloc heap with transparent huge pages: the heap is grown
/// once by that much (address space only; pages are touched as malloc hands them out) and the
/// new range is advised as huge pages, so blocks carved from it fault 2 MiB at a time rather
/// than 4 KiB. A process-wide setting, for the command-line program's start.
void back_heap_with_huge_pages(size_t bytes);

/// A standard allocator over allocate_huge_aware, for vectors that grow large.
template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) {}  // NOLINT: rebinding, as allocators do
  T* allocate(size_t n) { return static_cast<T*>(allocate_huge_aware(n * sizeof(T))); }
  void deallocate(T* p, size_t) { std::free(p); }
  friend bool operator==(const HugePageAllocator&, const HugePageAllocator&) { return true; }
};

/// A vector whose large buffers sit in huge pages.
template <class T>
using HugePageVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace servesim

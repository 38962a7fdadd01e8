#include "sim/huge_pages.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdint>

namespace servesim {

namespace {
constexpr size_t kMappedZerosBytes = size_t{64} << 10;
constexpr size_t kProbeBytes = size_t{64} << 10;  // below the mmap threshold
}  // namespace

void* allocate_zeroed(size_t bytes) {
  if (bytes < kMappedZerosBytes) {
    void* block = std::calloc(bytes == 0 ? 1 : bytes, 1);
    if (block == nullptr) throw std::bad_alloc();
    return block;
  }
  void* block = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (block == MAP_FAILED) throw std::bad_alloc();
  return block;
}

void free_zeroed(void* block, size_t bytes) {
  if (block == nullptr) return;
  if (bytes < kMappedZerosBytes)
    std::free(block);
  else
    munmap(block, bytes);
}

void back_heap_with_huge_pages(size_t bytes) {
  // The heap grows by the pad at once, and is not trimmed back. malloc carves any block from
  // the heap's top while the top has room, large ones too; only when it runs out does it map
  // blocks above the mmap threshold on their own (128 KiB: setting the pad stops glibc from
  // raising it).
  mallopt(M_TOP_PAD, static_cast<int>(bytes));
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(2 * bytes));
  // A small allocation grows the heap by the pad; what lies past it is the heap's future.
  void* probe = std::malloc(kProbeBytes);
  if (probe == nullptr) return;
  const auto first = reinterpret_cast<uintptr_t>(probe);
  const auto end = reinterpret_cast<uintptr_t>(sbrk(0));
  std::free(probe);  // the heap's top now starts where the probe did
  const uintptr_t begin = (first + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  const uintptr_t stop = end / kHugePageBytes * kHugePageBytes;
  if (stop <= begin) return;
#ifdef MADV_HUGEPAGE
  madvise(reinterpret_cast<void*>(begin), stop - begin, MADV_HUGEPAGE);
#endif
  // The heap below the first huge page boundary would take 4 KiB pages: one block that is
  // never touched (nor freed) fills it, so that the next allocation starts at the boundary
  // (a chunk is its 16-byte header then the memory; the filler's size rounds to 16 bytes).
  constexpr size_t kChunkHeaderBytes = 2 * sizeof(size_t);
  const size_t gap = begin - first;
  if (gap >= 4 * kChunkHeaderBytes) {
    [[maybe_unused]] static void* const filler = std::malloc(gap - sizeof(size_t));
  }
}

}  // namespace servesim

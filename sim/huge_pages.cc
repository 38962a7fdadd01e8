#include "sim/huge_pages.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdint>

namespace servesim {

void back_heap_with_huge_pages(size_t bytes) {
  // Blocks below the threshold come from the heap; the heap grows by the pad at once.
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes));
  mallopt(M_TOP_PAD, static_cast<int>(bytes));
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(2 * bytes));
  // One allocation grows the heap by the pad; what lies past it is the heap's future.
  void* probe = std::malloc(kHugePageBytes);
  if (probe == nullptr) return;
  const auto first = reinterpret_cast<uintptr_t>(probe);
  const auto end = reinterpret_cast<uintptr_t>(sbrk(0));
  std::free(probe);
  const uintptr_t begin = (first + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  const uintptr_t stop = end / kHugePageBytes * kHugePageBytes;
#ifdef MADV_HUGEPAGE
  if (stop > begin) madvise(reinterpret_cast<void*>(begin), stop - begin, MADV_HUGEPAGE);
#endif
}

}  // namespace servesim

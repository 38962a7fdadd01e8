// What a first touch of memory costs on the machine at hand: the page faults behind every
// vector that grows, every buffer first filled. items_per_second counts 4 KiB pages, so its
// inverse is the cost of one page's first touch. On a virtual machine this can dwarf the
// instructions of a small run (README, Performance).

#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>

namespace {

constexpr size_t kPageBytes = 4096;
constexpr size_t kRegionBytes = size_t{16} << 20;

/// A fresh anonymous mapping, each 4 KiB page written once (a fault each), then unmapped.
void BM_FirstTouch4KiBPages(benchmark::State& state) {
  for (auto _ : state) {
    void* region =
        mmap(nullptr, kRegionBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) {
      state.SkipWithError("mmap failed");
      return;
    }
    auto* bytes = static_cast<volatile char*>(region);
    for (size_t at = 0; at < kRegionBytes; at += kPageBytes) bytes[at] = 1;
    munmap(region, kRegionBytes);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kRegionBytes / kPageBytes));
}
BENCHMARK(BM_FirstTouch4KiBPages)->Unit(benchmark::kMillisecond);

/// The same region asked for as transparent huge pages (2 MiB, where the kernel grants them),
/// still counted in 4 KiB pages.
void BM_FirstTouchHugePages(benchmark::State& state) {
  constexpr size_t kHugeBytes = size_t{2} << 20;
  for (auto _ : state) {
    void* region = std::aligned_alloc(kHugeBytes, kRegionBytes);
    if (region == nullptr) {
      state.SkipWithError("aligned_alloc failed");
      return;
    }
#ifdef MADV_HUGEPAGE
    madvise(region, kRegionBytes, MADV_HUGEPAGE);
#endif
    auto* bytes = static_cast<volatile char*>(region);
    for (size_t at = 0; at < kRegionBytes; at += kPageBytes) bytes[at] = 1;
    std::free(region);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kRegionBytes / kPageBytes));
}
BENCHMARK(BM_FirstTouchHugePages)->Unit(benchmark::kMillisecond);

}  // namespace

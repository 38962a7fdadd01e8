// Summary percentiles of one latency metric: the order statistics that median, p90, p95 and p99
// interpolate, selected from n lognormal values (a latency's usual shape). "Radix" is
// select_order_statistics (above 16,384 values: bucketed by their leading distinct bits, then
// the buckets holding the ranks; below, as "Partition"); "Partition" is select_by_partition, the
// same ranks by successive std::nth_element, the reference. items_per_second counts values.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <vector>

#include "sim/rng.h"
#include "sim/stats.h"

namespace {

using namespace servesim;

std::vector<double> lognormal_values(size_t n) {
  Rng rng(1, "bench");
  std::vector<double> values(n);
  for (double& v : values) v = rng.lognormal(3.0, 1.0);
  return values;
}

std::vector<uint64_t> summary_ranks(size_t n) {
  std::vector<uint64_t> ranks;
  for (double p : kSummaryPercentiles) {
    const PercentileRank r = percentile_rank(n, p);
    ranks.push_back(r.lo);
    ranks.push_back(r.hi);
  }
  return ranks;
}

template <class Select>
void time_summary_ranks(benchmark::State& state, Select select) {
  const auto n = static_cast<size_t>(state.range(0));
  const std::vector<double> values = lognormal_values(n);
  const std::vector<uint64_t> ranks = summary_ranks(n);
  std::vector<double> scratch, out(ranks.size());
  for (auto _ : state) {
    scratch = values;
    select(scratch, ranks, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
}

void BM_SummaryRanksRadix(benchmark::State& state) {
  time_summary_ranks(state,
                     [](std::vector<double>& values, const std::vector<uint64_t>& ranks,
                        std::vector<double>& out) { select_order_statistics(values, ranks, out); });
}
BENCHMARK(BM_SummaryRanksRadix)->Arg(1'200)->Arg(10'000)->Arg(20'000)->Arg(1'000'000);

void BM_SummaryRanksPartition(benchmark::State& state) {
  time_summary_ranks(state,
                     [](std::vector<double>& values, const std::vector<uint64_t>& ranks,
                        std::vector<double>& out) { select_by_partition(values, ranks, out); });
}
BENCHMARK(BM_SummaryRanksPartition)->Arg(1'200)->Arg(10'000)->Arg(20'000)->Arg(1'000'000);

}  // namespace

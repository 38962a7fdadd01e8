#include "sim/stats.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <iterator>
#include <limits>
#include <numeric>
#include <vector>

#include "sim/error.h"

namespace servesim {

PercentileRank percentile_rank(uint64_t count, double p) {
  const double rank = p / 100.0 * static_cast<double>(count - 1);
  const auto lo = static_cast<uint64_t>(std::floor(rank));
  return {lo, std::min(lo + 1, count - 1), rank - static_cast<double>(lo)};
}

void write_latency_entries(nlohmann::ordered_json& out, const std::string& name, double mean,
                           double std, const std::function<double(double)>& percentile) {
  out["mean_" + name] = mean;
  out["median_" + name] = percentile(kSummaryPercentiles[0]);
  out["std_" + name] = std;
  out["p90_" + name] = percentile(kSummaryPercentiles[1]);
  out["p95_" + name] = percentile(kSummaryPercentiles[2]);
  out["p99_" + name] = percentile(kSummaryPercentiles[3]);
}

double percentile_sorted(std::span<const double> sorted, double p) {
  if (sorted.empty()) return 0;
  const PercentileRank r = percentile_rank(sorted.size(), p);
  return r.between(sorted[r.lo], sorted[r.hi]);
}

namespace {

/// A double's bits as an unsigned key in the double's order (negatives flipped whole, the sign
/// bit set on the others), so that integer order is numeric order, -0 before +0 aside.
uint64_t order_key(double value) {
  const auto bits = std::bit_cast<uint64_t>(value);
  return bits >> 63 ? ~bits : bits | (uint64_t{1} << 63);
}

}  // namespace

void select_by_partition(std::span<double> values, std::span<const uint64_t> ranks,
                         std::span<double> out) {
  // Ascending ranks: [begin, n) always holds the n - begin largest values, so each selection
  // works on what lies above the previous one, and the rank right after it is that part's
  // minimum.
  size_t begin = 0;
  for (size_t i = 0; i < ranks.size(); ++i) {
    const auto k = static_cast<size_t>(ranks[i]);
    if (k < begin) {  // a repeated rank
      out[i] = values[k];
      continue;
    }
    if (k == begin)
      std::iter_swap(values.begin() + static_cast<ptrdiff_t>(k),
                     std::min_element(values.begin() + static_cast<ptrdiff_t>(k), values.end()));
    else
      std::nth_element(values.begin() + static_cast<ptrdiff_t>(begin),
                       values.begin() + static_cast<ptrdiff_t>(k), values.end());
    out[i] = values[k];
    begin = k + 1;
  }
}

void select_order_statistics(std::span<double> values, std::span<const uint64_t> ranks,
                             std::span<double> out) {
  // Past the first cache levels a partition, which mispredicts a branch on about every other
  // comparison, slows several-fold (servesim_bench --benchmark_filter=SummaryRanks: 10,000
  // values at 620 M/s, 20,000 at 120 M/s); counting the values into 2^11 buckets by their
  // leading distinct key bits keeps 270 M/s. The buckets holding the ranks are gathered and
  // selected in alike, a few percent of the values each.
  constexpr size_t kRadixAbove = 16384, kBits = 11, kBucketCount = size_t{1} << kBits;
  if (values.size() <= kRadixAbove || ranks.empty()) {
    select_by_partition(values, ranks, out);
    return;
  }
  uint64_t lowest = std::numeric_limits<uint64_t>::max(), highest = 0;
  for (double v : values) {
    const uint64_t key = order_key(v);
    lowest = std::min(lowest, key);
    highest = std::max(highest, key);
  }
  if (lowest == highest) {
    std::fill(out.begin(), out.end(), values[0]);
    return;
  }
  // Keys from lowest to highest share their bits above the highest differing one.
  const int shift =
      std::max(0, static_cast<int>(std::bit_width(lowest ^ highest)) - static_cast<int>(kBits));
  const uint64_t base = lowest >> shift;
  const auto bucket_of = [&](double v) {
    return static_cast<size_t>((order_key(v) >> shift) - base);
  };
  std::array<uint64_t, kBucketCount> count{};
  for (double v : values) ++count[bucket_of(v)];
  // Each rank's bucket (ranks ascend, so buckets do) and the values below that bucket.
  std::vector<size_t> rank_bucket(ranks.size());
  std::vector<uint64_t> below(ranks.size());
  std::array<int, kBucketCount> slot;
  slot.fill(-1);
  std::vector<size_t> segment_begin;  // where each wanted bucket's values go, by slot
  size_t bucket = 0, gathered = 0;
  uint64_t before = 0;
  for (size_t i = 0; i < ranks.size(); ++i) {
    while (before + count[bucket] <= ranks[i]) before += count[bucket++];
    rank_bucket[i] = bucket;
    below[i] = before;
    if (slot[bucket] < 0) {
      slot[bucket] = static_cast<int>(segment_begin.size());
      segment_begin.push_back(gathered);
      gathered += count[bucket];
    }
  }
  std::vector<double> wanted(gathered);
  std::vector<size_t> fill = segment_begin;
  for (double v : values) {
    const int s = slot[bucket_of(v)];
    if (s >= 0) wanted[fill[static_cast<size_t>(s)]++] = v;
  }
  // The ranks of one bucket are consecutive: selected among its values, relative to them.
  for (size_t i = 0; i < ranks.size();) {
    size_t end = i;
    std::vector<uint64_t> inner;
    while (end < ranks.size() && rank_bucket[end] == rank_bucket[i])
      inner.push_back(ranks[end++] - below[i]);
    const size_t s = static_cast<size_t>(slot[rank_bucket[i]]);
    select_order_statistics(
        std::span<double>(wanted).subspan(segment_begin[s], count[rank_bucket[i]]), inner,
        out.subspan(i, end - i));
    i = end;
  }
}

double percentile_select(std::span<double> values, double p) {
  if (values.empty()) return 0;
  const PercentileRank r = percentile_rank(values.size(), p);
  const uint64_t ranks[2] = {r.lo, r.hi};
  double at[2];
  select_order_statistics(values, ranks, at);
  return r.between(at[0], at[1]);
}

void add_latency_summary(nlohmann::ordered_json& out, const std::string& name,
                         std::span<double> values) {
  const double n = static_cast<double>(values.size());
  const double mean = values.empty() ? 0 : std::accumulate(values.begin(), values.end(), 0.0) / n;
  double var = 0;
  for (double v : values) var += (v - mean) * (v - mean);
  // The order statistics the summary's percentiles interpolate, selected rather than sorted.
  constexpr size_t kCount = std::size(kSummaryPercentiles);
  PercentileRank rank[kCount] = {};
  uint64_t ranks[2 * kCount];
  double at[2 * kCount] = {};
  if (!values.empty()) {
    for (size_t i = 0; i < kCount; ++i) {
      rank[i] = percentile_rank(values.size(), kSummaryPercentiles[i]);
      ranks[2 * i] = rank[i].lo;
      ranks[2 * i + 1] = rank[i].hi;
    }
    select_order_statistics(values, ranks, at);
  }
  write_latency_entries(out, name, mean, values.empty() ? 0 : std::sqrt(var / n), [&](double p) {
    const size_t i = static_cast<size_t>(
        std::find(std::begin(kSummaryPercentiles), std::end(kSummaryPercentiles), p) -
        std::begin(kSummaryPercentiles));
    SERVESIM_CHECK(i < kCount, "percentile {} is not a summary percentile", p);
    return rank[i].between(at[2 * i], at[2 * i + 1]);
  });
}

}  // namespace servesim

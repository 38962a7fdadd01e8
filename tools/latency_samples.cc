#include "tools/latency_samples.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "tools/stats.h"

namespace servesim {
namespace {

/// LSD radix sort by value, 11 bits a pass, as many passes as the largest value needs (three for
/// gaps under 8.6 s). Gaps are mostly distinct (an iteration's duration grows with its
/// contexts), so this sort is most of what the statistics cost: radix is ~5x faster than
/// std::sort here. Stable, so equal values keep their order (not that it matters for counts).
template <typename Run>
void radix_sort_by_value(Run* first, Run* last, std::vector<Run>& scratch) {
  const size_t n = static_cast<size_t>(last - first);
  const bool any_negative = std::any_of(first, last, [](const Run& r) { return r.value_ns < 0; });
  if (n < 256 || any_negative) {  // negative values never come from gaps, but stay correct
    std::sort(first, last, [](const Run& a, const Run& b) { return a.value_ns < b.value_ns; });
    return;
  }
  uint64_t max_value = 0;
  for (const Run* r = first; r != last; ++r)
    max_value = std::max(max_value, static_cast<uint64_t>(r->value_ns));
  constexpr int kBits = 11;
  constexpr size_t kBins = size_t{1} << kBits;
  scratch.resize(n);
  Run* from = first;
  Run* to = scratch.data();
  for (int shift = 0; shift < 64 && (max_value >> shift) != 0; shift += kBits) {
    size_t offsets[kBins] = {};
    for (size_t i = 0; i < n; ++i)
      ++offsets[(static_cast<uint64_t>(from[i].value_ns) >> shift) & (kBins - 1)];
    size_t sum = 0;
    for (size_t& o : offsets) sum += std::exchange(o, sum);
    for (size_t i = 0; i < n; ++i)
      to[offsets[(static_cast<uint64_t>(from[i].value_ns) >> shift) & (kBins - 1)]++] = from[i];
    std::swap(from, to);
  }
  if (from != first) std::copy(from, from + n, first);
}

}  // namespace

void RunLengthSamples::add_new_run(int64_t value_ns, uint64_t count) {
  if (recent_.empty()) recent_.assign(size_t{1} << kRecentBits, 0);
  // Fibonacci hashing: the top bits of value x 2^64 / golden ratio.
  const size_t h = (static_cast<uint64_t>(value_ns) * 0x9E3779B97F4A7C15ULL) >> (64 - kRecentBits);
  uint32_t& slot = recent_[h];
  if (slot != 0 && runs_[slot - 1].value_ns == value_ns) {
    runs_[slot - 1].count += count;
    return;
  }
  runs_.push_back(Run{value_ns, count});
  slot = static_cast<uint32_t>(runs_.size());
  if (runs_.size() >= compact_at_) compact();
}

void RunLengthSamples::merge(const RunLengthSamples& other) {
  for (const Run& r : other.runs_) add(Time{r.value_ns}, r.count);
}

void RunLengthSamples::compact() {
  if (sorted_end_ == runs_.size()) return;
  const auto by_value = [](const Run& a, const Run& b) { return a.value_ns < b.value_ns; };
  const auto middle = runs_.begin() + static_cast<std::ptrdiff_t>(sorted_end_);
  std::vector<Run> scratch;
  radix_sort_by_value(&*middle, runs_.data() + runs_.size(), scratch);
  std::inplace_merge(runs_.begin(), middle, runs_.end(), by_value);
  size_t out = 0;
  for (size_t i = 0; i < runs_.size(); ++i) {
    if (out > 0 && runs_[out - 1].value_ns == runs_[i].value_ns)
      runs_[out - 1].count += runs_[i].count;
    else
      runs_[out++] = runs_[i];
  }
  runs_.resize(out);
  sorted_end_ = out;
  std::fill(recent_.begin(), recent_.end(), 0);  // indices moved
  compact_at_ = std::max(compact_at_, 2 * runs_.size());
}

double RunLengthSamples::percentile_ms(double p) {
  if (total_count_ == 0) return 0;
  compact();
  // The same interpolation as percentile_sorted (tools/stats.h) over the expanded list.
  const PercentileRank rank = percentile_rank(total_count_, p);
  const uint64_t lo = rank.lo, hi = rank.hi;
  const double frac = rank.frac;
  double lo_ms = 0, hi_ms = 0;
  uint64_t seen = 0;  // samples in the runs before run i
  for (const Run& r : runs_) {
    const uint64_t end = seen + r.count;  // this run covers order statistics [seen, end)
    if (lo >= seen && lo < end) lo_ms = Time{r.value_ns}.to_ms();
    if (hi >= seen && hi < end) {
      hi_ms = Time{r.value_ns}.to_ms();
      break;
    }
    seen = end;
  }
  return lo_ms + (hi_ms - lo_ms) * frac;
}

double RunLengthSamples::mean_ms() const {
  if (total_count_ == 0) return 0;
  // Exact: a 128-bit integer sum of nanoseconds cannot overflow (2^64 samples of 2^63 ns).
  __extension__ using Int128 = __int128;
  Int128 sum_ns = 0;
  for (const Run& r : runs_) sum_ns += static_cast<Int128>(r.value_ns) * r.count;
  return static_cast<double>(sum_ns) / static_cast<double>(total_count_) * 1e-6;
}

double RunLengthSamples::std_ms() const {
  if (total_count_ == 0) return 0;
  const double mean = mean_ms();
  double sum_sq = 0;
  for (const Run& r : runs_) {
    const double d = Time{r.value_ns}.to_ms() - mean;
    sum_sq += d * d * static_cast<double>(r.count);
  }
  return std::sqrt(sum_sq / static_cast<double>(total_count_));
}

void add_latency_summary(nlohmann::ordered_json& out, const std::string& name,
                         RunLengthSamples& samples) {
  write_latency_entries(out, name, samples.mean_ms(), samples.std_ms(),
                        [&](double p) { return samples.percentile_ms(p); });
}

}  // namespace servesim

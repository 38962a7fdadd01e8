#include "sim/latency_samples.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <utility>

#include "sim/error.h"
#include "sim/stats.h"

namespace servesim {
namespace {

/// LSD radix sort by value, 11 bits a pass, as many passes as the largest value needs (three for
/// gaps under 8.6 s). Gaps are mostly distinct (an iteration's duration grows with its
/// contexts), so this sort is most of what the statistics cost: radix is ~5x faster than
/// std::sort here. Stable, so equal values keep their order (not that it matters for counts).
template <typename Run>
void radix_sort_by_value(Run* first, Run* last, HugePageVector<Run>& scratch) {
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

void LazyCounts::allocate() {
  const size_t bytes = size_ * sizeof(uint64_t);
  counts_ = std::unique_ptr<uint64_t[], FreeZeroed>(static_cast<uint64_t*>(allocate_zeroed(bytes)),
                                                    FreeZeroed{bytes});
}

void LazyCounts::copy_from(const LazyCounts& other) {
  release();
  if (other.end_ == 0) return;
  std::copy(other.counts_.get() + other.lowest_, other.counts_.get() + other.end_,
            data() + other.lowest_);
  lowest_ = other.lowest_;
  end_ = other.end_;
}

void RunLengthSamples::add_steps(const StepSeries& steps, uint64_t count,
                                 const LaterStepSums* later) {
  if (count == 0 || steps.steps <= 0) return;
  if (steps.steps == 1) {
    add(Time{steps.first_ns}, count);
    return;
  }
  changed();
  total_count_ += count * static_cast<uint64_t>(steps.steps);
  if (sketched_) {
    add_to_sketch(steps.first_ns, count);
    steps.for_each_later(1, steps.steps, [&](int64_t value_ns) { add_to_sketch(value_ns, count); });
    return;
  }
  // Steps j >= 1 are monotone in j: the first and the last of them bound the others.
  const int64_t second = steps.duration_ns(1), last = steps.duration_ns(steps.steps - 1);
  if (later != nullptr)
    account_series(steps, count, second, last, *later);
  else
    account_series(steps, count, second, last);
  series_.push_back({steps, count});
  if (stored_runs() >= exact_entries_) compact();
}

void RunLengthSamples::account_series(const StepSeries& steps, uint64_t count, int64_t second,
                                      int64_t last) {
  // A series shares one count: sum its values first, multiply once.
  const auto exact_range = [](int64_t v) { return v >= 0 && v < kExactBelowNs; };
  const bool series_in_range =
      exact_range(steps.first_ns) && exact_range(second) && exact_range(last);
  // Successive steps mostly stay in one bucket: count them there and look the bucket up only
  // when a value leaves it (one unsigned comparison tests both sides); step 0 goes first.
  uint64_t* const counts = series_bucket_count_.data();
  size_t bucket = 0;  // counts[0] += 0 at the first value: not counted into
  uint64_t bucket_lowest = 0, bucket_width = 0, in_bucket = 0;
  const auto in_buckets = [&](int64_t v) {
    if (static_cast<uint64_t>(v) - bucket_lowest >= bucket_width) [[unlikely]] {
      counts[bucket] += in_bucket * count;
      bucket = bucket_of(v);
      series_bucket_count_.note(bucket);
      const auto [lowest, width] = bucket_range(bucket);
      bucket_lowest = static_cast<uint64_t>(lowest);
      bucket_width = bucket == 0 ? uint64_t{1} - bucket_lowest : static_cast<uint64_t>(width);
      in_bucket = 0;
    }
    ++in_bucket;
  };
  in_buckets(steps.first_ns);
  const auto first = static_cast<uint64_t>(steps.first_ns);
  Uint128 series_sum = first, series_sum_sq = static_cast<Uint128>(first) * first;
  // Offset by the least of them, the later steps' sums fit in 64 bits when their spread is
  // small enough (steps x spread^2 < 2^64: all but very long, steep series), and cost less.
  const int64_t base = std::min(second, last);
  const auto spread = static_cast<uint64_t>(std::max(second, last) - base);
  const auto later = static_cast<uint64_t>(steps.steps - 1);
  uint64_t bound = 0;
  if (series_in_range && !__builtin_mul_overflow(spread, spread, &bound) &&
      !__builtin_mul_overflow(bound, later, &bound)) {
    uint64_t sum_w = 0, sum_w_sq = 0;
    steps.for_each_later(1, steps.steps, [&](int64_t v) {
      in_buckets(v);
      const auto w = static_cast<uint64_t>(v - base);
      sum_w += w;
      sum_w_sq += w * w;
    });
    const auto b = static_cast<Uint128>(base);
    series_sum += later * b + sum_w;
    series_sum_sq += later * b * b + 2 * b * sum_w + sum_w_sq;
  } else {
    steps.for_each_later(1, steps.steps, [&](int64_t v) {
      in_buckets(v);
      const auto u = static_cast<uint64_t>(v);
      series_sum += u;
      series_sum_sq += static_cast<Uint128>(u) * u;
    });
  }
  counts[bucket] += in_bucket * count;
  add_series_sums(series_in_range, series_sum, series_sum_sq, count);
}

void RunLengthSamples::account_series(const StepSeries& steps, uint64_t count, int64_t second,
                                      int64_t last, const LaterStepSums& later) {
  const auto exact_range = [](int64_t v) { return v >= 0 && v < kExactBelowNs; };
  const bool series_in_range =
      exact_range(steps.first_ns) && exact_range(second) && exact_range(last);
  if (!series_in_range || !later.squares_exact || later.steps != steps.steps - 1 ||
      later.base_ns != std::min(second, last)) {
    account_series(steps, count, second, last);
    return;
  }
  series_bucket_count_.add(bucket_of(steps.first_ns), count);
  // Buckets are monotone in j as the steps are: from each step, the first step in another
  // bucket, the first whose value passes the bucket's edge (values from step 1 on are at least
  // 1 ns, above bucket 0). The unrounded duration crosses the edge at a step found in closed
  // form: that step and its neighbour settle it but near a rounding, where a bisection does;
  // the search keeps the last value it read, often the next bucket's first.
  const int64_t n = steps.steps;
  const size_t last_bucket = bucket_of(last);
  const bool rising = second <= last;
  uint64_t* const counts = series_bucket_count_.data();
  size_t lowest_bucket = last_bucket, end_bucket = last_bucket + 1;
  int64_t j = 1;
  int64_t value = second;
  int64_t read_step = 1, read_value = second;
  const auto duration = [&](int64_t k) {
    if (k != read_step) {
      read_step = k;
      read_value = steps.later_duration_ns(k);
    }
    return read_value;
  };
  while (j < n) {
    const size_t bucket = bucket_of(value);
    lowest_bucket = std::min(lowest_bucket, bucket);
    end_bucket = std::max(end_bucket, bucket + 1);
    int64_t outside = n;  // the first step past j in another bucket
    if (bucket != last_bucket) {
      const auto [lowest, width] = bucket_range(bucket);
      const int64_t edge_ns = rising ? lowest + width : lowest;
      outside = first_step_leaving(j, n, crossing_step(steps, edge_ns), [&](int64_t k) {
        return rising ? duration(k) >= edge_ns : duration(k) < edge_ns;
      });
    }
    counts[bucket] += static_cast<uint64_t>(outside - j) * count;
    j = outside;
    if (j < n) value = duration(j);
  }
  series_bucket_count_.note(lowest_bucket);
  series_bucket_count_.note(end_bucket - 1);
  // The same sums as the pass over the steps would take, from the planned ones.
  const auto first = static_cast<uint64_t>(steps.first_ns);
  const auto b = static_cast<Uint128>(later.base_ns);
  const auto later_steps = static_cast<uint64_t>(later.steps);
  const Uint128 series_sum = first + later_steps * b + later.excess_sum_ns;
  const Uint128 series_sum_sq = static_cast<Uint128>(first) * first + later_steps * b * b +
                                2 * b * later.excess_sum_ns + later.excess_sq_sum;
  add_series_sums(true, series_sum, series_sum_sq, count);
}

void RunLengthSamples::add_series_sums(bool series_in_range, Uint128 series_sum,
                                       Uint128 series_sum_sq, uint64_t count) {
  // Past the exact range the sums are not used; kept from overflowing meanwhile.
  series_in_range_ = series_in_range_ && series_in_range && total_count_ < kExactBelowSamples;
  if (!series_in_range_) return;
  series_sum_ns_ += static_cast<Int128>(series_sum) * count;
  series_sum_sq_ns_ += static_cast<Int128>(series_sum_sq) * count;
}

void RunLengthSamples::merge(const RunLengthSamples& other) {
  if (!other.sketched_) {
    other.for_each_entry([this](int64_t value_ns, uint64_t count) { add(Time{value_ns}, count); });
    return;
  }
  changed();
  to_sketch();
  total_count_ += other.total_count_;
  sketch_.merge(other.sketch_);
  sums_exact_ = sums_exact_ && other.sums_exact_ && total_count_ < kExactBelowSamples;
  sum_ns_ += other.sum_ns_;
  sum_sq_ns_ += other.sum_sq_ns_;
  sum_ld_ += other.sum_ld_;
  sum_sq_ld_ += other.sum_sq_ld_;
}

void RunLengthSamples::add_to_sketch(int64_t value_ns, uint64_t count) {
  sketch_.add(static_cast<double>(value_ns), count);
  const auto v = static_cast<long double>(value_ns);
  sum_ld_ += v * static_cast<long double>(count);
  sum_sq_ld_ += v * v * static_cast<long double>(count);
  sums_exact_ =
      sums_exact_ && value_ns >= 0 && value_ns < kExactBelowNs && total_count_ < kExactBelowSamples;
  if (!sums_exact_) return;  // the integer sums are not used then
  const Int128 exact_v = value_ns;
  sum_ns_ += exact_v * count;
  sum_sq_ns_ += exact_v * exact_v * count;
}

void RunLengthSamples::to_sketch() {
  if (sketched_) return;
  summarize();  // the exact integer sums so far
  for_each_entry([this](int64_t value_ns, uint64_t count) {
    sketch_.add(static_cast<double>(value_ns), count);
    const auto v = static_cast<long double>(value_ns);
    sum_ld_ += v * static_cast<long double>(count);
    sum_sq_ld_ += v * v * static_cast<long double>(count);
  });
  // Swapped with empty vectors: clear() would keep the memory.
  HugePageVector<Run>().swap(runs_);
  HugePageVector<Run>().swap(scratch_);
  series_.release();
  bucket_count_.release();
  series_bucket_count_.release();
  prepared_.clear();
  sorted_end_ = 0;
  sketched_ = true;
}

void RunLengthSamples::compact() {
  // Series stay as they are: expanded they would take a pair per step.
  if (sorted_end_ == runs_.size()) {
    if (stored_runs() > exact_entries_ / 2) to_sketch();
    return;
  }
  const auto by_value = [](const Run& a, const Run& b) { return a.value_ns < b.value_ns; };
  const auto middle = runs_.begin() + static_cast<std::ptrdiff_t>(sorted_end_);
  radix_sort_by_value(runs_.data() + sorted_end_, runs_.data() + runs_.size(), scratch_);
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
  // Kept exact only while compactions free at least half the limit: each then stands for as
  // many entries added, and memory stays bounded.
  if (stored_runs() > exact_entries_ / 2) to_sketch();
}

size_t RunLengthSamples::bucket_of(int64_t value_ns) {
  if (value_ns <= 0) return 0;
  const auto v = static_cast<uint64_t>(value_ns);
  const auto width = static_cast<size_t>(std::bit_width(v));  // 1..63
  constexpr size_t kShift = kBucketBits + 1, kMask = (size_t{1} << kBucketBits) - 1;
  const uint64_t mantissa =
      width > kShift ? (v >> (width - kShift)) & kMask : (v << (kShift - width)) & kMask;
  return (width << kBucketBits) | static_cast<size_t>(mantissa);
}

std::pair<int64_t, int64_t> RunLengthSamples::bucket_range(size_t bucket) {
  const auto width = static_cast<int>(bucket >> kBucketBits);
  const auto mantissa = static_cast<int64_t>(bucket & ((size_t{1} << kBucketBits) - 1));
  if (width == 0) return {std::numeric_limits<int64_t>::min(), 0};  // values <= 0: not counted
  constexpr int kShift = kBucketBits + 1;
  if (width <= kShift) {  // buckets of one value (or none)
    const int64_t value = (int64_t{1} << (width - 1)) | (mantissa >> (kShift - width));
    return {value, 1};
  }
  return {(int64_t{1} << (width - 1)) | (mantissa << (width - kShift)),
          int64_t{1} << (width - kShift)};
}

void RunLengthSamples::summarize() {
  if (summarized_) return;
  if (sketched_) {  // the sums are kept as samples come
    summarized_ = true;
    return;
  }
  // The series were counted as they came (account_series): only the pairs are left.
  bucket_count_.copy_from(series_bucket_count_);
  Int128 sum = series_sum_ns_, sum_sq = series_sum_sq_ns_;
  bool in_range = total_count_ < kExactBelowSamples && series_in_range_;
  for (const Run& r : runs_) {
    bucket_count_.add(bucket_of(r.value_ns), r.count);
    in_range = in_range && r.value_ns >= 0 && r.value_ns < kExactBelowNs;
    if (!in_range) continue;  // the sums are not used then
    const Int128 v = r.value_ns;
    sum += v * r.count;
    sum_sq += v * v * r.count;
  }
  sums_exact_ = in_range;  // else the sums may have wrapped, and are not used
  sum_ns_ = sum;
  sum_sq_ns_ = sum_sq;
  summarized_ = true;
}

std::pair<size_t, uint64_t> RunLengthSamples::bucket_of_rank(uint64_t rank) const {
  size_t bucket = bucket_count_.lowest();  // none below
  uint64_t before = 0;
  while (before + bucket_count_[bucket] <= rank) before += bucket_count_[bucket++];
  return {bucket, before};
}

void RunLengthSamples::prepare_percentiles(std::span<const double> ps) {
  if (total_count_ == 0 || sketched_) return;
  summarize();
  std::vector<size_t> wanted;
  for (double p : ps) {
    const PercentileRank rank = percentile_rank(total_count_, p);
    for (uint64_t r : {rank.lo, rank.hi}) {
      const size_t bucket = bucket_of_rank(r).first;
      const bool have = std::any_of(prepared_.begin(), prepared_.end(),
                                    [&](const Prepared& b) { return b.bucket == bucket; });
      if (!have && std::find(wanted.begin(), wanted.end(), bucket) == wanted.end())
        wanted.push_back(bucket);
    }
  }
  collect_buckets(wanted);
}

void RunLengthSamples::collect_buckets(const std::vector<size_t>& wanted) {
  if (wanted.empty()) return;
  const size_t first_new = prepared_.size();
  // The wanted buckets' places in prepared_, over the span of buckets from the lowest wanted
  // to the highest only (a few thousand at most in practice, not all kBuckets).
  const auto [first_bucket, last_bucket] = std::minmax_element(wanted.begin(), wanted.end());
  const size_t slot_base = *first_bucket;
  std::vector<int> slot(*last_bucket - slot_base + 1, -1);
  int64_t lowest = std::numeric_limits<int64_t>::max(),
          highest = std::numeric_limits<int64_t>::min();
  for (size_t bucket : wanted) {
    slot[bucket - slot_base] = static_cast<int>(prepared_.size());
    const auto [bucket_lowest, width] = bucket_range(bucket);
    Prepared b{bucket, bucket_lowest, {}, {}};
    if (width > 0 && width <= kCountedBucketNs) b.counts = LazyCounts(static_cast<size_t>(width));
    prepared_.push_back(std::move(b));
    lowest = std::min(lowest, bucket_lowest);
    highest = std::max(highest, bucket == 0 ? int64_t{1} : bucket_lowest + width);
  }
  const auto add_to = [](Prepared& b, int64_t value_ns, uint64_t count) {
    if (b.counts.size() > 0)
      b.counts.add(static_cast<size_t>(value_ns - b.lowest_ns), count);
    else
      b.runs.push_back(Run{value_ns, count});
  };
  // Pairs, and each series' first step: one pass over the span of the wanted buckets.
  const auto add_if_wanted = [&](int64_t value_ns, uint64_t count) {
    if (value_ns < lowest || value_ns >= highest) return;
    // Inside [lowest, highest) a value's bucket is inside the span (buckets follow values).
    const int s = slot[bucket_of(value_ns) - slot_base];
    if (s >= 0) add_to(prepared_[static_cast<size_t>(s)], value_ns, count);
  };
  for (const Run& r : runs_) add_if_wanted(r.value_ns, r.count);
  // The later steps of a series: bucket by bucket, so that only a series whose ends straddle a
  // wanted bucket is read, and a long one only at its few steps inside (the span from p50 to
  // p99 would hold half of each).
  std::vector<std::pair<int64_t, int64_t>> ranges;  // [lowest, end) of each new bucket
  for (size_t i = first_new; i < prepared_.size(); ++i) {
    const auto [bucket_lowest, width] = bucket_range(prepared_[i].bucket);
    ranges.emplace_back(bucket_lowest,
                        prepared_[i].bucket == 0 ? int64_t{1} : bucket_lowest + width);
  }
  series_.for_each([&](const CountedSeries& s) {
    const StepSeries& steps = s.steps;
    add_if_wanted(steps.first_ns, s.count);
    if (steps.steps <= 1) return;
    const int64_t second = steps.duration_ns(1), last = steps.duration_ns(steps.steps - 1);
    for (size_t i = 0; i < ranges.size(); ++i) {
      Prepared& b = prepared_[first_new + i];
      if (b.counts.size() == 0) {
        for_each_later_step_in(steps, second, last, ranges[i].first, ranges[i].second,
                               [&](int64_t value_ns) { add_to(b, value_ns, s.count); });
        continue;
      }
      // Counted through the pointer; the steps inside are monotone, so the first and the last
      // of them bound the range counted into.
      uint64_t* const counts = b.counts.data();
      int64_t first_in = -1, last_in = -1;
      for_each_later_step_in(steps, second, last, ranges[i].first, ranges[i].second,
                             [&](int64_t value_ns) {
                               counts[value_ns - b.lowest_ns] += s.count;
                               if (first_in < 0) first_in = value_ns;
                               last_in = value_ns;
                             });
      if (first_in < 0) continue;
      b.counts.note(static_cast<size_t>(std::min(first_in, last_in) - b.lowest_ns));
      b.counts.note(static_cast<size_t>(std::max(first_in, last_in) - b.lowest_ns));
    }
  });
}

int64_t RunLengthSamples::value_at_rank(uint64_t rank) {
  // Not a structured binding: clang before 16 cannot capture those in a lambda.
  const std::pair<size_t, uint64_t> bucket_and_before = bucket_of_rank(rank);
  const size_t bucket = bucket_and_before.first;
  const uint64_t before = bucket_and_before.second;
  auto found = std::find_if(prepared_.begin(), prepared_.end(),
                            [&](const Prepared& b) { return b.bucket == bucket; });
  if (found == prepared_.end()) {  // a percentile prepare_percentiles was not told of
    collect_buckets({bucket});
    found = std::prev(prepared_.end());
  }
  uint64_t target = rank - before;
  if (found->counts.size() > 0) {
    for (size_t i = found->counts.lowest(); i < found->counts.end(); ++i) {
      if (target < found->counts[i]) return found->lowest_ns + static_cast<int64_t>(i);
      target -= found->counts[i];
    }
    SERVESIM_CHECK(false, "rank {} beyond the {} samples held", rank, total_count_);
  }
  // Weighted quickselect among the bucket's entries: the rank falls among the values below a
  // pivot, equal to it, or above it (three-way partition, median-of-three pivot).
  std::vector<Run>& runs = found->runs;
  size_t lo = 0, hi = runs.size();
  for (;;) {
    SERVESIM_CHECK(lo < hi, "rank {} beyond the {} samples held", rank, total_count_);
    int64_t a = runs[lo].value_ns, b = runs[lo + (hi - lo) / 2].value_ns, c = runs[hi - 1].value_ns;
    if (a > b) std::swap(a, b);
    const int64_t pivot = std::max(a, std::min(b, c));
    size_t lt = lo, i = lo, gt = hi;
    uint64_t less = 0, equal = 0;
    while (i < gt) {
      const int64_t v = runs[i].value_ns;
      if (v < pivot) {
        less += runs[i].count;
        std::swap(runs[lt++], runs[i++]);
      } else if (v > pivot) {
        std::swap(runs[i], runs[--gt]);
      } else {
        equal += runs[i++].count;
      }
    }
    if (target < less) {
      hi = lt;
    } else if (target < less + equal) {
      return pivot;
    } else {
      target -= less + equal;
      lo = gt;
    }
  }
}

double RunLengthSamples::percentile_ms(double p) {
  if (total_count_ == 0) return 0;
  if (sketched_) return sketch_.percentile(p) * 1e-6;  // as Time::to_ms
  summarize();
  // The same interpolation as percentile_sorted (sim/stats.h) over the expanded list.
  const PercentileRank rank = percentile_rank(total_count_, p);
  const double lo_ms = Time{value_at_rank(rank.lo)}.to_ms();
  const double hi_ms = rank.hi == rank.lo ? lo_ms : Time{value_at_rank(rank.hi)}.to_ms();
  return rank.between(lo_ms, hi_ms);
}

double RunLengthSamples::mean_ms() {
  if (total_count_ == 0) return 0;
  summarize();
  // Exact: the integer sum of nanoseconds, divided once.
  if (sums_exact_) return static_cast<double>(sum_ns_) / static_cast<double>(total_count_) * 1e-6;
  if (sketched_)
    return static_cast<double>(sum_ld_ / static_cast<long double>(total_count_) * 1e-6L);
  long double sum = 0;
  for_each_entry(
      [&](int64_t value_ns, uint64_t count) { sum += static_cast<long double>(value_ns) * count; });
  return static_cast<double>(sum / static_cast<long double>(total_count_) * 1e-6L);
}

double RunLengthSamples::std_ms() {
  if (total_count_ == 0) return 0;
  summarize();
  const auto n = static_cast<long double>(total_count_);
  if (!sums_exact_ && sketched_) {  // the entries are gone: from the long double sums
    const long double mean = sum_ld_ / n;
    return static_cast<double>(std::sqrt(std::max(0.0L, sum_sq_ld_ / n - mean * mean)) * 1e-6L);
  }
  if (!sums_exact_) {  // two passes in long double
    long double mean = 0, sum_sq = 0;
    for_each_entry([&](int64_t value_ns, uint64_t count) {
      mean += static_cast<long double>(value_ns) * count;
    });
    mean /= n;
    for_each_entry([&](int64_t value_ns, uint64_t count) {
      const long double d = static_cast<long double>(value_ns) - mean;
      sum_sq += d * d * count;
    });
    return static_cast<double>(std::sqrt(sum_sq / n) * 1e-6L);
  }
  // From the integer sums, so the result does not depend on the order samples came in: with
  // S1 = sum v, S2 = sum v^2, N samples and S1 = q N + r, the sum of squared deviations is
  // S2 - S1^2 / N = (S2 - q^2 N - 2 q r) - r^2 / N, the bracket exact in 128 bits.
  const Int128 count = total_count_;
  const Int128 q = sum_ns_ / count, rem = sum_ns_ % count;
  const Int128 whole = sum_sq_ns_ - q * q * count - 2 * q * rem;
  const long double sum_sq = static_cast<long double>(whole) -
                             static_cast<long double>(rem) * static_cast<long double>(rem) / n;
  return static_cast<double>(std::sqrt(std::max(0.0L, sum_sq) / n) * 1e-6L);
}

bool add_latency_summary(nlohmann::ordered_json& out, const std::string& name,
                         RunLengthSamples& samples) {
  samples.prepare_percentiles(kSummaryPercentiles);
  write_latency_entries(out, name, samples.mean_ms(), samples.std_ms(),
                        [&](double p) { return samples.percentile_ms(p); });
  return samples.exact();
}

}  // namespace servesim

#pragma once
/// Exact latency statistics over a very large number of samples.
///
/// Inter-token latencies are per token: a million requests of a few hundred tokens make
/// hundreds of millions of samples, gigabytes as plain doubles. But one decode iteration gives
/// every request in the batch the same gap (the iteration's duration), so the store keeps one
/// entry per iteration with the number of tokens it stands for: (value, count) pairs from add(),
/// and from add_steps() whole closed-form decode stretches as their StepSeries (one entry for
/// any number of steps). A series' steps are counted into a histogram and exact sums as it
/// comes, from the sums the replica took of them when it planned the stretch (a search per
/// bucket the series crosses); only the percentiles' buckets read its steps again.
/// Values are integer nanoseconds, and the statistics are exactly those of the expanded list:
/// percentiles interpolate linearly between order statistics as numpy does (bit for bit the
/// same as percentile_sorted over the expanded values in ms); mean and standard deviation come
/// from exact integer sums.
///
/// Nothing is sorted to answer: one pass over the pairs completes the series' histogram over
/// log-spaced buckets and the sums, a second collects the entries of the buckets that hold the
/// wanted ranks, and a weighted selection finds the ranks among those. When the store grows very
/// large, entries are sorted and equal values merged (compaction), so memory is bounded by the
/// number of distinct values and series, never by the number of samples.
///
/// When a compaction still leaves more than half of `exact_entries` entries (distinct values
/// plus series; 2^20 by default: a very long run), the store turns into a QuantileSketch
/// (sim/quantile_sketch.h) and memory stops growing: percentiles are then within
/// QuantileSketch::kRelativeError of the exact ones, while count, mean and standard deviation
/// still come from exact integer sums over every sample. exact() tells which.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sim/chunked_array.h"
#include "sim/huge_pages.h"
#include "sim/quantile_sketch.h"
#include "sim/step_series.h"
#include "sim/time.h"

namespace servesim {

/// Frees what allocate_zeroed gave, knowing its size.
struct FreeZeroed {
  size_t bytes = 0;
  void operator()(uint64_t* p) const { free_zeroed(p, bytes); }
};

/// Counts at indices 0..size-1, zero until counted. A large array is fresh zero pages from
/// the kernel (allocate_zeroed): only the pages counts fall on are ever touched (each
/// first touch of a page is a page fault, which costs microseconds on a virtual machine). The
/// range of indices counted into is kept, so that a scan need not read the rest.
class LazyCounts {
 public:
  LazyCounts() = default;
  explicit LazyCounts(size_t size) : size_(size), lowest_(size) {}
  size_t size() const { return size_; }
  bool allocated() const { return counts_ != nullptr; }
  void add(size_t i, uint64_t n) {
    data()[i] += n;
    note(i);
  }
  uint64_t operator[](size_t i) const { return counts_ ? counts_[i] : 0; }
  /// The counts, for a loop that adds through the pointer and tells note() where.
  uint64_t* data() {
    if (!counts_) allocate();
    return counts_.get();
  }
  void note(size_t i) {
    lowest_ = std::min(lowest_, i);
    end_ = std::max(end_, i + 1);
  }
  /// The range counted into: [lowest(), end()), empty when nothing was.
  size_t lowest() const { return lowest_; }
  size_t end() const { return end_; }
  /// Becomes a copy of `other` (of the same size), touching only its counted range.
  void copy_from(const LazyCounts& other);
  /// Frees the counts: all zero again.
  void release() {
    counts_.reset();
    lowest_ = size_;
    end_ = 0;
  }

 private:
  void allocate();
  std::unique_ptr<uint64_t[], FreeZeroed> counts_;
  size_t size_ = 0, lowest_ = 0, end_ = 0;
};

class RunLengthSamples {
 public:
  static constexpr size_t kExactEntries = size_t{1} << 21;
  /// The pairs are sorted and merged whenever `exact_entries` entries (pairs and series) are
  /// held; if more than half as many remain, the store turns into a sketch.
  explicit RunLengthSamples(size_t exact_entries = kExactEntries) : exact_entries_(exact_entries) {}

  /// Records `count` samples of `value`.
  void add(Time value, uint64_t count = 1) {
    if (count == 0) return;
    changed();
    total_count_ += count;
    if (sketched_) {
      add_to_sketch(value.ns, count);
      return;
    }
    if (!runs_.empty() && runs_.back().value_ns == value.ns) {
      runs_.back().count += count;
      return;
    }
    runs_.push_back(Run{value.ns, count});
    if (stored_runs() >= exact_entries_) compact();
  }
  /// Records the tokens of a run of decode steps: `count` samples of each step's duration,
  /// each converted and counted (the reference).
  void add_steps(const StepSeries& steps, uint64_t count) { add_steps(steps, count, nullptr); }
  /// The same given the sums over its later steps (steps.later_sums(1, steps.steps), as the
  /// replica planned them): the histogram's buckets are then found by searching the steps
  /// (monotone), and no step is read for the sums.
  void add_steps(const StepSeries& steps, uint64_t count, const LaterStepSums& later) {
    add_steps(steps, count, &later);
  }
  /// Adds every sample of `other`.
  void merge(const RunLengthSamples& other);

  uint64_t count() const { return total_count_; }
  bool empty() const { return total_count_ == 0; }
  /// Entries held now: (value, count) pairs and step series.
  size_t stored_runs() const { return runs_.size() + series_.size(); }
  /// False once the store has turned into a sketch: percentiles are then approximate.
  bool exact() const { return !sketched_; }

  /// Percentile `p` in [0, 100] in milliseconds, numpy "linear"; 0 when empty.
  double percentile_ms(double p);
  /// Collects what the percentiles `ps` need in one pass over the store, so that asking for
  /// them next costs no pass of its own.
  void prepare_percentiles(std::span<const double> ps);
  /// Mean and population standard deviation in milliseconds; 0 when empty.
  double mean_ms();
  double std_ms();

 private:
  struct Run {
    int64_t value_ns;
    uint64_t count;
  };
  struct CountedSeries {
    StepSeries steps;
    uint64_t count;
  };
  __extension__ using Int128 = __int128;
  __extension__ using Uint128 = unsigned __int128;
  /// Below these, sums of v and v^2 are exact in 128 bits (2^40 x 2^80 < 2^127).
  static constexpr int64_t kExactBelowNs = int64_t{1} << 40;
  static constexpr uint64_t kExactBelowSamples = uint64_t{1} << 40;
  static constexpr int kBucketBits = 10;  ///< buckets per octave: 2^kBucketBits
  static constexpr size_t kBuckets = size_t{64} << kBucketBits;

  void add_steps(const StepSeries& steps, uint64_t count, const LaterStepSums* later);
  void changed() {
    summarized_ = false;
    prepared_.clear();
  }
  /// Moves every entry into the sketch (with the sums) and frees the store.
  void to_sketch();
  void add_to_sketch(int64_t value_ns, uint64_t count);
  /// Calls f(value_ns, count) for every pair and every step of every series.
  template <class F>
  void for_each_entry(F&& f) const {
    for (const Run& r : runs_) f(r.value_ns, r.count);
    series_.for_each([&](const CountedSeries& s) {
      for (int64_t j = 0; j < s.steps.steps; ++j) f(s.steps.duration_ns(j), s.count);
    });
  }
  /// The first step j in (inside, outside) at which `leaves(j)` holds, else `outside`:
  /// `leaves` is monotone in j and false at `inside`. `guess` (where the unrounded durations
  /// cross the edge) and its neighbour are tried first; a bisection settles the rest.
  template <class Leaves>
  static int64_t first_step_leaving(int64_t inside, int64_t outside, double guess,
                                    Leaves&& leaves) {
    if (guess > static_cast<double>(inside) && guess < static_cast<double>(outside)) {
      const auto at = static_cast<int64_t>(guess);
      const bool out = leaves(at);
      (out ? outside : inside) = at;
      const int64_t neighbour = out ? at - 1 : at + 1;
      if (neighbour > inside && neighbour < outside)
        (leaves(neighbour) ? outside : inside) = neighbour;
    }
    while (outside - inside > 1) {
      const int64_t mid = inside + (outside - inside) / 2;
      (leaves(mid) ? outside : inside) = mid;
    }
    return outside;
  }
  /// The step at which a series' unrounded duration crosses value_ns - 1/2, where its rounded
  /// one reaches value_ns (not a number, or infinite, for a flat series).
  static double crossing_step(const StepSeries& steps, int64_t value_ns) {
    return std::ceil(((static_cast<double>(value_ns) - 0.5) * 1e-9 - steps.d0_s) / steps.slope_s);
  }
  /// Calls f(value_ns) for the steps j >= 1 of `steps` with values in [lo, hi), given
  /// second = duration_ns(1) and last = duration_ns(steps.steps - 1). Those steps are monotone
  /// in j (an affine cost, rounded), so a series whose ends miss the range is skipped (most,
  /// a bucket being narrow), and the steps inside are found by a search and read alone.
  template <class F>
  static void for_each_later_step_in(const StepSeries& steps, int64_t second, int64_t last,
                                     int64_t lo, int64_t hi, F&& f) {
    if (std::max(second, last) < lo || std::min(second, last) >= hi) return;
    const int64_t n = steps.steps;
    const auto at_least = [&](int64_t value_ns) {
      return [&steps, value_ns](int64_t j) { return steps.later_duration_ns(j) >= value_ns; };
    };
    const auto below = [&](int64_t value_ns) {
      return [&steps, value_ns](int64_t j) { return steps.later_duration_ns(j) < value_ns; };
    };
    int64_t begin = 1, end = n;
    if (second <= last) {  // rising: from the first step at lo or above to the first at hi
      if (second < lo) begin = first_step_leaving(1, n, crossing_step(steps, lo), at_least(lo));
      if (last >= hi)
        end = first_step_leaving(begin - 1, n, crossing_step(steps, hi), at_least(hi));
    } else {  // falling: from the first step below hi to the first below lo
      if (second >= hi) begin = first_step_leaving(1, n, crossing_step(steps, hi), below(hi));
      if (last < lo) end = first_step_leaving(begin - 1, n, crossing_step(steps, lo), below(lo));
    }
    steps.for_each_later_in_lanes(begin, end, f);
  }
  /// Adds a series' steps to the series' histogram and sums, as it comes, in one pass over
  /// its steps.
  void account_series(const StepSeries& steps, uint64_t count, int64_t second, int64_t last);
  /// The same from the sums over its later steps: the steps of each bucket found by a search.
  void account_series(const StepSeries& steps, uint64_t count, int64_t second, int64_t last,
                      const LaterStepSums& later);
  /// Adds a series' sum and sum of squares (over its steps, before `count`).
  void add_series_sums(bool series_in_range, Uint128 series_sum, Uint128 series_sum_sq,
                       uint64_t count);
  /// The histogram and the sums, in one pass over the pairs, once per batch of queries.
  void summarize();
  /// Bucket of a value: its bit width and the kBucketBits bits after its leading one (1/1024
  /// of an octave wide), so bucket order is value order; values <= 0 share bucket 0.
  static size_t bucket_of(int64_t value_ns);
  /// The bucket holding the sample of 0-based `rank` in the expanded list, and the samples in
  /// the buckets below it.
  std::pair<size_t, uint64_t> bucket_of_rank(uint64_t rank) const;
  /// One pass over the store collects the entries of the `wanted` buckets into prepared_.
  void collect_buckets(const std::vector<size_t>& wanted);
  /// The value of the sample of `rank`, selected among its bucket's collected entries.
  int64_t value_at_rank(uint64_t rank);
  /// Sorts the pairs added since the last compaction (series become pairs first), merges
  /// them into the sorted prefix and merges equal values. The next compaction waits until the
  /// store has doubled.
  void compact();

  HugePageVector<Run> runs_;
  ChunkedArray<CountedSeries> series_;  ///< never copied as it grows
  HugePageVector<Run> scratch_;         ///< the radix sort's buffer, kept between compactions
  size_t sorted_end_ = 0;  ///< runs_[0, sorted_end_) is sorted by value, values distinct
  size_t exact_entries_;
  uint64_t total_count_ = 0;

  bool sketched_ = false;
  QuantileSketch sketch_;  ///< of the values in ns, once sketched_
  /// Once sketched_, the sums are kept as samples come; also in long double, for when the
  /// integer sums leave their exact range.
  long double sum_ld_ = 0, sum_sq_ld_ = 0;

  /// The series' samples per bucket and their sums (exact while series_in_range_).
  LazyCounts series_bucket_count_{kBuckets};
  Int128 series_sum_ns_ = 0, series_sum_sq_ns_ = 0;
  bool series_in_range_ = true;

  bool summarized_ = false;
  LazyCounts bucket_count_{kBuckets};  ///< samples per bucket
  Int128 sum_ns_ = 0, sum_sq_ns_ = 0;
  bool sums_exact_ = true;
  /// A bucket whose entries have been collected: as exact counts per nanosecond value when the
  /// bucket is at most kCountedBucketNs wide (gaps under ~134 ms), else as entries to select
  /// among. Cleared when samples are added.
  struct Prepared {
    size_t bucket;
    int64_t lowest_ns;  ///< the bucket's smallest value
    LazyCounts counts;  ///< samples of value lowest_ns + i (size 0: runs instead)
    std::vector<Run> runs;
  };
  static constexpr int64_t kCountedBucketNs = int64_t{1} << 16;
  /// The smallest value of a bucket and its width in nanoseconds.
  static std::pair<int64_t, int64_t> bucket_range(size_t bucket);
  std::vector<Prepared> prepared_;
};

/// Adds mean_, median_, std_, p90_, p95_, p99_ NAME entries, as add_latency_summary does for a
/// vector of doubles (sim/stats.h). Returns whether the percentiles are exact.
bool add_latency_summary(nlohmann::ordered_json& out, const std::string& name,
                         RunLengthSamples& samples);

}  // namespace servesim

#pragma once
/// Exact latency statistics over a very large number of samples, stored run-length encoded.
///
/// Inter-token latencies are per token: a million requests of a few hundred tokens make
/// hundreds of millions of samples, gigabytes as plain doubles. But one decode iteration gives
/// every request in the batch the same gap (the iteration's duration), and the runner sees those
/// tokens one after another, so consecutive equal values collapse into one (value, count) pair:
/// about one pair per iteration instead of one value per token. Values are integer nanoseconds,
/// so "equal" is exact, and the statistics are exactly those of the expanded list: percentiles
/// interpolate linearly between order statistics as numpy does (bit for bit the same as
/// percentile_sorted over the expanded values in ms), the mean is an exact integer sum divided
/// once. When the pairs pile up, equal values far apart are merged as well (sort + merge), so
/// memory is bounded by the number of distinct values seen, never by the number of samples.
///
/// The store is mergeable (merge()), and add() takes a count, so a closed-form decode that
/// emits a run of n tokens with one gap can record it in O(1).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sim/time.h"

namespace servesim {

class RunLengthSamples {
 public:
  /// Records `count` samples of `value`.
  void add(Time value, uint64_t count = 1) {
    if (count == 0) return;
    total_count_ += count;
    if (!runs_.empty() && runs_.back().value_ns == value.ns) {
      runs_.back().count += count;
      return;
    }
    add_new_run(value.ns, count);
  }
  /// Adds every sample of `other`.
  void merge(const RunLengthSamples& other);

  uint64_t count() const { return total_count_; }
  bool empty() const { return total_count_ == 0; }
  /// Pairs held now (memory is 16 bytes each).
  size_t stored_runs() const { return runs_.size(); }

  /// Percentile `p` in [0, 100] in milliseconds, numpy "linear"; 0 when empty.
  double percentile_ms(double p);
  /// Mean and population standard deviation in milliseconds; 0 when empty.
  double mean_ms() const;
  double std_ms() const;

 private:
  struct Run {
    int64_t value_ns;
    uint64_t count;
  };
  /// Sorts the pairs added since the last compaction, merges them into the sorted prefix and
  /// merges equal values. Each pair is sorted once, in the batch it arrived with; the merges are
  /// linear, and the next compaction waits until the store has doubled, so the total cost is
  /// O(n log n) however often statistics are asked for.
  void compact();
  /// A value unlike the last one: counted on a recent equal pair when the direct-mapped table of
  /// recent values finds one, else appended. With several replicas the tokens of different
  /// iterations interleave, so the last pair alone misses most repeats; the table catches them
  /// in O(1) and keeps the store (and the sorting) near the number of distinct values.
  void add_new_run(int64_t value_ns, uint64_t count);

  static constexpr int kRecentBits = 14;
  std::vector<uint32_t> recent_;  ///< hash of value -> 1 + index into runs_ (0: empty)
  std::vector<Run> runs_;
  size_t sorted_end_ = 0;  ///< runs_[0, sorted_end_) is sorted by value, values distinct
  uint64_t total_count_ = 0;
  size_t compact_at_ = 1 << 16;
};

/// Adds mean_, median_, std_, p90_, p95_, p99_ NAME entries, as add_latency_summary does for a
/// vector of doubles (tools/stats.h).
void add_latency_summary(nlohmann::ordered_json& out, const std::string& name,
                         RunLengthSamples& samples);

}  // namespace servesim

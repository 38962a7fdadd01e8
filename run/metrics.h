#pragma once
/// What a run measures, apart from who runs it: per-request latencies (sim/latency_values.h and
/// sim/latency_samples.h), per-request records, drops, misroutes and goodput, and time
/// series sampled every sample interval of simulated time. It is the replicas' observer behind
/// the gateway (policies/gateway.h), so it only reads what happens and never decides anything.

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "models/instance.h"
#include "models/network.h"
#include "run/scenario.h"
#include "sim/latency_samples.h"
#include "sim/latency_values.h"
#include "sim/simulator.h"

namespace servesim {

struct MetricsOptions {
  /// Requests with a lower id are left out of the statistics (closed-loop warm-up).
  int64_t warmup_requests = 0;
  SloSpec slo;
  double sample_interval_s = 1.0;
  /// Keep each request's record for the result's "requests" array.
  bool keep_records = true;
  /// When set, records are written here as JSON lines as requests end, and none is kept.
  std::ostream* records_out = nullptr;
  /// Latency percentiles stay exact up to this many samples (OutputSpec::exact_samples).
  uint64_t exact_samples = uint64_t{1} << 20;
};

class Metrics final : public InstanceObserver {
 public:
  /// The time series hold at most one more than this many samples: past it, every other
  /// sample is dropped (the newest stays) and the interval doubles (each windowed p99 then
  /// covers two windows: the larger of the two is kept, an upper bound), so memory stays
  /// bounded however long the simulated span.
  static constexpr size_t kMaxSamples = size_t{1} << 17;

  Metrics(Simulator& sim, MetricsOptions options);

  /// A replica to sample, in scenario order (its index is Request::instance).
  void add_instance(const Instance* instance);
  /// Called at each sample (every sample interval of simulated time, so it costs nothing per
  /// event), e.g. for a progress bar.
  void set_on_sample(std::function<void()> on_sample) { on_sample_ = std::move(on_sample); }
  /// Samples now and then every interval while other events remain.
  void start_sampling();

  // InstanceObserver.
  void on_first_token(const Request& r) override {
    if (counted(r)) latencies_.ttft_ms.add((r.first_token - r.spec.arrival).to_ms());
  }
  void on_decode_stretch(const std::vector<ScheduledItem>& items,
                         std::span<const int64_t> step_end_ns) override;
  bool records_tokens_of(const Request& r) const override { return counted(r); }
  void on_decode_steps(uint64_t requests, const StepSeries& steps,
                       const LaterStepSums& later) override {
    latencies_.itl.add_steps(steps, requests, later);
  }
  void on_token(const Request& r, Time gap) override {
    if (counted(r)) latencies_.itl.add(gap);
  }
  void on_finish(Request& r) override;
  void on_drop(Request& r, std::string_view reason) override;
  void on_kv_transfer(const Request& r, Time duration, double bytes, bool migration) override;

  /// Samples the links' cumulative transfer time with the replicas (disaggregated runs).
  void set_network(ClusterNetwork* network);
  void on_iteration(const Instance& instance, Time start, Time duration,
                    const IterationCost& cost) override;
  void on_step_resized(const Instance& instance) override;

  /// Work a replica's GPUs did (busy seconds, and per PP stage the flops and HBM bytes of the
  /// priced kernels on one of its GPUs), whole run or cumulative to a sample time.
  struct Work {
    double busy_s = 0;
    std::vector<double> flops, hbm_bytes;  ///< per PP stage, per GPU
    /// Per PP stage, per GPU: power over TDP integrated over the busy time (models/power.h,
    /// each step at its own MFU and MBU), in seconds.
    std::vector<double> busy_tdp_s;
  };
  /// Replica `index`'s work over the whole run.
  Work total_work(size_t index) const;
  /// Adds the GPU's mfu and mbu over `makespan_s`: the flops (HBM bytes) of the priced kernels
  /// on one GPU of PP stage `stage` over its peak rate (bandwidth) times the run.
  void add_gpu_utilisation(nlohmann::ordered_json& out, size_t index, int stage,
                           double makespan_s) const;
  /// Energy of one GPU of PP stage `stage` of replica `index` with board power `tdp_w` over
  /// `makespan_s`: its busy power plus the idle floor while no iteration runs, in joules.
  double gpu_energy_j(size_t index, int stage, double tdp_w, double makespan_s) const;
  /// Adds replica `index`'s busy_fraction and, per PP stage, mfu and mbu within each sample
  /// window (the work done between a sample and the one before; 0 at the first).
  /// With `stage_tdp_w` (a TDP per stage, none 0), each stage's power_w per GPU as well.
  void add_utilisation_series(nlohmann::ordered_json& out, size_t index,
                              const std::vector<double>& stage_tdp_w) const;
  /// Tokens generated for every finished request, warm-up included (energy per token).
  int64_t all_output_tokens() const { return all_output_tokens_; }

  /// Per-request latency stores of the counted requests, in ms: exact up to a sample count,
  /// then sketched (sim/latency_values.h).
  struct Latencies {
    explicit Latencies(uint64_t exact_samples)
        : ttft_ms(exact_samples),
          tpot_ms(exact_samples),
          e2el_ms(exact_samples),
          queue_ms(exact_samples),
          misrouted_e2el_ms(exact_samples),
          fault_affected_e2el_ms(exact_samples),
          kv_transfer_ms(exact_samples),
          kv_migration_ms(exact_samples),
          itl(2 * exact_samples) {}
    LatencyValues ttft_ms, tpot_ms, e2el_ms, queue_ms, misrouted_e2el_ms;
    LatencyValues fault_affected_e2el_ms;  ///< requests a replica failure evicted
    LatencyValues kv_transfer_ms;          ///< prefill end to KV arrived at the decode replica
    LatencyValues kv_migration_ms;         ///< preemption to KV arrived at the new replica
    RunLengthSamples itl;  ///< per token, run-length encoded: one entry per decode iteration
  };
  Latencies& latencies() { return latencies_; }

  /// Per replica, one value per sample.
  struct Series {
    /// Cumulative work at each sample: busy seconds, and per PP stage flops and HBM bytes.
    std::vector<double> busy_s;
    std::vector<std::vector<double>> flops, hbm_bytes, busy_tdp_s;
    std::vector<double> kv_used_fraction;
    std::vector<int64_t> waiting, running;
    std::vector<uint64_t> preemptions;  ///< cumulative
  };
  const std::vector<double>& sample_times_s() const { return sample_times_s_; }
  const std::vector<Series>& series() const { return series_; }
  /// Per link and direction (2 x link + 0 forward, 1 back), the cumulative seconds of
  /// transfer (integral of used bandwidth / bandwidth) at each sample; empty without a network.
  const std::vector<std::vector<double>>& link_transfer_s() const { return link_transfer_s_; }
  uint64_t kv_transfers() const { return kv_transfers_; }
  double kv_transfer_bytes() const { return kv_transfer_bytes_; }
  uint64_t kv_migrations() const { return kv_migrations_; }
  double kv_migration_bytes() const { return kv_migration_bytes_; }
  /// p99 end-to-end latency of the requests that finished within each sample interval.
  const std::vector<double>& p99_e2el_ms_by_window() const { return p99_e2el_ms_by_window_; }

  int64_t warmup_requests() const { return options_.warmup_requests; }
  uint64_t exact_samples() const { return options_.exact_samples; }
  /// The interval between samples, doubled each time the series were thinned.
  double sample_interval_s() const { return interval_s_; }
  bool has_slo() const { return options_.slo.any(); }
  uint64_t truncated() const { return truncated_; }
  uint64_t good() const { return good_; }
  /// Counted requests that meet each SLO, out of slo_requests(): the counted requests that
  /// finished or were dropped (a dropped request meets none).
  struct SloMet {
    uint64_t ttft = 0, tpot = 0, e2el = 0, all = 0;
  };
  const SloMet& slo_met() const { return slo_met_; }
  uint64_t slo_requests() const { return latencies_.e2el_ms.count() + counted_dropped_; }
  /// Adds the SLO attainment of `met` out of `requests` to `out` (nothing without a /slo).
  void add_slo_attainment(nlohmann::ordered_json& out, const SloMet& met, uint64_t requests) const;
  /// Adds replica `index`'s figures over the requests that finished on it: completed,
  /// request and output throughput over `duration_s`, TTFT/TPOT/E2EL summaries and, with a
  /// /slo, its SLO attainment, and percentiles_exact (false once they come from a sketch).
  void add_instance_summary(nlohmann::ordered_json& out, size_t index, double duration_s);
  uint64_t misrouted_preemptions() const { return misrouted_preemptions_; }
  /// Requests a fault evicted (counted whether they then finished or were dropped).
  uint64_t fault_affected() const { return fault_affected_; }
  int64_t input_tokens() const { return input_tokens_; }
  int64_t output_tokens() const { return output_tokens_; }
  Time last_finish() const { return last_finish_; }
  const std::map<std::string, uint64_t>& drops_by_instance() const { return drops_by_instance_; }
  /// The kept records (empty when they are streamed or not kept); moved out by the result.
  nlohmann::ordered_json& records() { return records_; }
  /// From now on each record goes to `out` as its request ends, written as an element of the
  /// result's "requests" array (run/request_record.h), and none is kept.
  void write_records_as_elements(std::ostream& out) { elements_out_ = &out; }
  /// How many records write_records_as_elements has written.
  uint64_t records_written() const { return records_written_; }

 private:
  bool counted(const Request& r) const {
    return static_cast<int64_t>(r.id) >= options_.warmup_requests;
  }
  void sample();
  /// Drops every other sample and doubles the interval.
  void thin_series();
  void record_request(const Request& r, std::string_view status, std::string_view reason);

  Simulator& sim_;
  MetricsOptions options_;
  std::vector<const Instance*> instances_;
  std::function<void()> on_sample_;

  // One double per counted request each up to 2^20 requests (8 MiB per metric), then a sketch.
  // Inter-token gaps are per token, so they are stored run-length encoded.
  Latencies latencies_;
  /// Per replica, of the counted requests that finished on it. Each is exact up to its share
  /// of exact_samples, so that together they hold no more than one summary metric does.
  struct InstanceLatencies {
    explicit InstanceLatencies(uint64_t exact_samples)
        : ttft_ms(exact_samples), tpot_ms(exact_samples), e2el_ms(exact_samples) {}
    LatencyValues ttft_ms, tpot_ms, e2el_ms;
    int64_t output_tokens = 0;
    SloMet slo_met;
    uint64_t dropped = 0;
  };
  std::vector<InstanceLatencies> per_instance_;
  /// Per replica: the work of iterations that ended, and the iteration in flight (one step, or
  /// a closed-form stretch of decode steps), whose steps are counted one by one as a
  /// step-by-step run would count them: at a sample, the steps ended and the running one pro
  /// rata of its elapsed time; at its end, the steps the replica applied (a stretch may be cut).
  struct InstanceWork {
    Work done;
    bool in_flight = false;
    int64_t start_ns = 0;
    StepSeries steps;
    uint64_t iterations_at_start = 0;
    Time busy_at_start;                     ///< the replica's busy time when the iteration started
    IterationCost cost;                     ///< of the first step
    std::vector<double> stage_layer_share;  ///< fraction of the layers each PP stage holds
    double peak_flops_per_s = 0, hbm_bytes_per_s = 0;
  };
  std::vector<InstanceWork> work_;
  /// Adds to `out` the work of the first `steps` steps of `w`'s iteration in flight, and
  /// `partial` (in [0, 1)) of the next one.
  /// `partial_span_s` is that next step's duration; `busy_s` the busy time all this covers
  /// (exact: the replica's own clock, not the series' unrounded durations).
  void add_steps(const InstanceWork& w, int64_t steps, double partial, double partial_span_s,
                 double busy_s, Work& out) const;
  /// Replica `index`'s work done by `now_ns`, into `out`.
  void work_at(size_t index, int64_t now_ns, Work& out) const;
  Work sample_work_;  ///< work_at's result in sample(), reused so that a sample allocates nothing
  SloMet slo_met_;
  uint64_t counted_dropped_ = 0;
  uint64_t truncated_ = 0, good_ = 0, misrouted_preemptions_ = 0, fault_affected_ = 0;
  std::ostream* elements_out_ = nullptr;
  uint64_t records_written_ = 0;
  std::string record_text_;                 ///< a record's text, reused
  std::vector<std::string> quoted_names_;   ///< the replicas' names as JSON strings
  const std::string quoted_none_ = "\"\"";  ///< no replica
  int64_t input_tokens_ = 0, output_tokens_ = 0, all_output_tokens_ = 0;
  Time last_finish_;
  nlohmann::ordered_json records_ = nlohmann::ordered_json::array();
  std::map<std::string, uint64_t> drops_by_instance_;

  /// E2E latencies of requests finished since the last sample (windowed p99 over time).
  std::vector<double> window_e2el_ms_, p99_e2el_ms_by_window_;
  std::vector<double> sample_times_s_;
  std::vector<Series> series_;
  ClusterNetwork* network_ = nullptr;
  std::vector<std::vector<double>> link_transfer_s_;
  uint64_t kv_transfers_ = 0, kv_migrations_ = 0;
  double kv_transfer_bytes_ = 0, kv_migration_bytes_ = 0;
  double interval_s_;
};

}  // namespace servesim

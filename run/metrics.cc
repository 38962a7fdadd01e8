#include "run/metrics.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <ostream>
#include <vector>

#include "models/power.h"
#include "run/json_text.h"
#include "run/request_record.h"
#include "sim/stats.h"

namespace servesim {

Metrics::Metrics(Simulator& sim, MetricsOptions options)
    : sim_(sim),
      options_(options),
      latencies_(options.exact_samples),
      interval_s_(options.sample_interval_s) {}

void Metrics::add_instance(const Instance* instance) {
  instances_.push_back(instance);
  quoted_names_.push_back(quoted_json_string(instance->name()));
  series_.emplace_back();
  // Rebuilt with each replica added: shares of exact_samples, set before the run starts.
  const uint64_t share = std::max<uint64_t>(1, options_.exact_samples / instances_.size());
  per_instance_.clear();
  per_instance_.reserve(instances_.size());
  for (size_t i = 0; i < instances_.size(); ++i) per_instance_.emplace_back(share);

  InstanceWork w;
  const int pp = instance->config().pp;
  const int64_t layers = instance->cost_config().model.num_layers;
  for (int st = 0; st < pp; ++st) w.stage_layer_share.push_back(stage_layer_share(layers, pp, st));
  w.done.flops.assign(static_cast<size_t>(pp), 0.0);
  w.done.hbm_bytes.assign(static_cast<size_t>(pp), 0.0);
  w.done.busy_tdp_s.assign(static_cast<size_t>(pp), 0.0);
  w.peak_flops_per_s = mfu_peak_flops_per_s(instance->cost_config());
  w.hbm_bytes_per_s = instance->cost_config().gpu.hbm_bandwidth_bytes_per_s;
  work_.push_back(std::move(w));
  series_.back().flops.resize(static_cast<size_t>(pp));
  series_.back().hbm_bytes.resize(static_cast<size_t>(pp));
  series_.back().busy_tdp_s.resize(static_cast<size_t>(pp));
}

void Metrics::on_iteration(const Instance& instance, Time start, Time duration,
                           const IterationCost& cost) {
  (void)duration;  // the steps' own durations are summed, as a cut stretch has fewer
  InstanceWork& w = work_[static_cast<size_t>(instance.index())];
  if (w.in_flight) {
    // The steps of the previous iteration the replica applied (all, unless a stretch was cut
    // or a failure lost its step).
    const auto applied = static_cast<int64_t>(instance.iterations() - w.iterations_at_start);
    add_steps(w, std::min(applied, w.steps.steps), 0.0, 0.0,
              (instance.busy_time() - w.busy_at_start).to_s(), w.done);
  }
  w.in_flight = true;
  w.start_ns = start.ns;
  w.steps = instance.planned_steps();
  w.iterations_at_start = instance.iterations();
  w.busy_at_start = instance.busy_time();
  w.cost = cost;
}

void Metrics::on_step_resized(const Instance& instance) {
  // The step's work is the same; it is spread over its actual span.
  work_[static_cast<size_t>(instance.index())].steps = instance.planned_steps();
}

namespace {

/// Sum over the integers j in [lo, hi) of p + q j.
double sum_affine(double p, double q, int64_t lo, int64_t hi) {
  if (hi <= lo) return 0.0;
  const auto n = static_cast<double>(hi - lo);
  return n * p + q * n * (static_cast<double>(lo) + static_cast<double>(hi) - 1) / 2;
}

/// Sum over the integers j in [lo, hi) of TDP-seconds at step j, span(j) x tdp_fraction:
/// min(span, idle x span + slope x max(flops / peak, bytes / bandwidth)), every term affine in
/// j (span_s = s0 + s1 j, flops_s = f0 + f1 j and bytes_s = b0 + b1 j in seconds of peak
/// work). The terms cross at most twice, so the sum splits into at most three affine pieces,
/// each summed in closed form: O(1) however many steps.
double sum_busy_tdp_s(double s0, double s1, double f0, double f1, double b0, double b1, int64_t lo,
                      int64_t hi) {
  if (hi <= lo) return 0.0;
  std::array<double, 5> cuts{static_cast<double>(lo), static_cast<double>(hi)};
  size_t cut_count = 2;
  auto add_root = [&](double c0, double c1) {  // where c0 + c1 j changes sign
    if (c1 == 0) return;
    const double root = -c0 / c1;
    if (root > static_cast<double>(lo) && root < static_cast<double>(hi)) cuts[cut_count++] = root;
  };
  const double k = PowerModel::kSlope, idle = PowerModel::kIdleFraction;
  add_root(f0 - b0, f1 - b1);
  add_root((1 - idle) * s0 - k * f0, (1 - idle) * s1 - k * f1);
  add_root((1 - idle) * s0 - k * b0, (1 - idle) * s1 - k * b1);
  for (size_t i = 1; i < cut_count; ++i)  // at most five: sorted by insertion
    for (size_t at = i; at > 0 && cuts[at] < cuts[at - 1]; --at) std::swap(cuts[at], cuts[at - 1]);
  double total = 0;
  for (size_t c = 0; c + 1 < cut_count; ++c) {
    const auto from = static_cast<int64_t>(std::ceil(cuts[c]));
    const auto to = static_cast<int64_t>(std::ceil(cuts[c + 1]));
    if (to <= from) continue;
    // Within the piece each comparison keeps its sign: read it at the piece's middle.
    const double mid = 0.5 * (static_cast<double>(from) + static_cast<double>(to - 1));
    const bool compute_bound = f0 + f1 * mid > b0 + b1 * mid;
    const double u0 = compute_bound ? f0 : b0, u1 = compute_bound ? f1 : b1;
    const bool at_tdp = idle * (s0 + s1 * mid) + k * (u0 + u1 * mid) >= s0 + s1 * mid;
    total += at_tdp ? sum_affine(s0, s1, from, to)
                    : sum_affine(idle * s0 + k * u0, idle * s1 + k * u1, from, to);
  }
  return total;
}

}  // namespace

void Metrics::add_steps(const InstanceWork& w, int64_t steps, double partial, double partial_span_s,
                        double busy_s, Work& out) const {
  // Step j of a stretch attends over j more tokens per decoding request than the first; its
  // span, for its power, is the series' (first step, then d0 + slope j, before the nanosecond
  // rounding: under 1 ns a step).
  const size_t last = out.flops.size() - 1;
  const double first_s = Time::from_ns(w.steps.first_ns).to_s();
  const auto n = steps;
  out.busy_s += busy_s;
  for (size_t st = 0; st <= last; ++st) {
    const double share = w.stage_layer_share[st];
    const double f0 = w.cost.layer_flops * share + (st == last ? w.cost.head_flops : 0.0);
    const double f1 = w.cost.layer_flops_step_growth * share;
    const double b0 = w.cost.layer_hbm_bytes * share + (st == last ? w.cost.head_hbm_bytes : 0.0);
    const double b1 = w.cost.layer_hbm_bytes_step_growth * share;
    out.flops[st] += sum_affine(f0, f1, 0, n);
    out.hbm_bytes[st] += sum_affine(b0, b1, 0, n);
    // Power at each step's own utilisation: the work in seconds at peak rate, over the span.
    const double fp = 1 / w.peak_flops_per_s, bp = 1 / w.hbm_bytes_per_s;
    auto tdp_s_of_step = [&](int64_t j, double span_s) {
      const double d = static_cast<double>(j);
      if (span_s <= 0) return 0.0;
      const double mfu = (f0 + f1 * d) * fp / span_s, mbu = (b0 + b1 * d) * bp / span_s;
      return PowerModel::tdp_fraction(mfu, mbu) * span_s;
    };
    double busy_tdp_s = n > 0 ? tdp_s_of_step(0, first_s) : 0.0;
    busy_tdp_s +=
        sum_busy_tdp_s(w.steps.d0_s, w.steps.slope_s, f0 * fp, f1 * fp, b0 * bp, b1 * bp, 1, n);
    if (partial > 0) {
      out.flops[st] += partial * (f0 + f1 * static_cast<double>(n));
      out.hbm_bytes[st] += partial * (b0 + b1 * static_cast<double>(n));
      busy_tdp_s += partial * tdp_s_of_step(n, partial_span_s);
    }
    out.busy_tdp_s[st] += busy_tdp_s;
  }
}

void Metrics::work_at(size_t index, int64_t now_ns, Work& out) const {
  const InstanceWork& w = work_[index];
  out = w.done;  // into out's own vectors: no allocation a sample
  if (!w.in_flight || now_ns <= w.start_ns) return;
  const Instance& instance = *instances_[index];
  // Every iteration plans at least one step: none left means a failure lost the iteration,
  // and the replica did what it applied (the series would otherwise count it busy until now).
  if (instance.planned_steps().steps == 0) {
    out = total_work(index);
    return;
  }
  // Steps ended by now, of those still planned (a cut stretch keeps its earlier steps).
  const int64_t planned = std::min(w.steps.steps, instance.planned_steps().steps);
  const int64_t j = std::min(planned, instance.planned_steps_ending_before(now_ns + 1));
  const int64_t begin_ns = j == 0 ? w.start_ns : instance.planned_step_end_ns(j - 1);
  const int64_t ended_ns = j == planned ? 0
                           : j == 0     ? instance.planned_step_end_ns(0)
                                        : begin_ns + instance.planned_steps().duration_ns(j);
  const double partial = j != planned ? static_cast<double>(now_ns - begin_ns) /
                                            static_cast<double>(ended_ns - begin_ns)
                                      : 0.0;
  // A stretch keeps the replica busy from its start: the time since then, up to its end.
  const int64_t busy_until_ns =
      planned == 0 ? now_ns : std::min(now_ns, instance.planned_step_end_ns(planned - 1));
  const double busy_s = Time::from_ns(busy_until_ns - w.start_ns).to_s();
  const double partial_span_s = j != planned ? Time::from_ns(ended_ns - begin_ns).to_s() : 0.0;
  add_steps(w, j, partial, partial_span_s, busy_s, out);
}

Metrics::Work Metrics::total_work(size_t index) const {
  const InstanceWork& w = work_[index];
  Work out = w.done;
  if (w.in_flight) {
    const auto applied =
        static_cast<int64_t>(instances_[index]->iterations() - w.iterations_at_start);
    add_steps(w, std::min(applied, w.steps.steps), 0.0, 0.0,
              (instances_[index]->busy_time() - w.busy_at_start).to_s(), out);
  }
  return out;
}

void Metrics::add_gpu_utilisation(nlohmann::ordered_json& out, size_t index, int stage,
                                  double makespan_s) const {
  const InstanceWork& w = work_[index];
  const Work total = total_work(index);
  const auto st = static_cast<size_t>(stage);
  out["pp_stage"] = stage;
  const double mfu = makespan_s > 0 ? total.flops[st] / (w.peak_flops_per_s * makespan_s) : 0.0;
  const double mbu = makespan_s > 0 ? total.hbm_bytes[st] / (w.hbm_bytes_per_s * makespan_s) : 0.0;
  out["mfu"] = mfu;
  out["mbu"] = mbu;
}

double Metrics::gpu_energy_j(size_t index, int stage, double tdp_w, double makespan_s) const {
  const Work total = total_work(index);
  const double idle_s = std::max(0.0, makespan_s - total.busy_s);
  return tdp_w *
         (total.busy_tdp_s[static_cast<size_t>(stage)] + PowerModel::kIdleFraction * idle_s);
}

void Metrics::add_utilisation_series(nlohmann::ordered_json& out, size_t index,
                                     const std::vector<double>& stage_tdp_w) const {
  const InstanceWork& w = work_[index];
  const Series& series = series_[index];
  // Work within each window over what the window allows; the first sample closes no window.
  auto windowed = [&](const std::vector<double>& cumulative, double rate) {
    std::vector<double> v(cumulative.size(), 0.0);
    for (size_t k = 1; k < cumulative.size(); ++k) {
      const double span_s = sample_times_s_[k] - sample_times_s_[k - 1];
      v[k] = span_s > 0 ? (cumulative[k] - cumulative[k - 1]) / (rate * span_s) : 0.0;
    }
    return v;
  };
  out["busy_fraction"] = windowed(series.busy_s, 1.0);
  auto& stages = out["stages"] = nlohmann::ordered_json::array();
  for (size_t st = 0; st < series.flops.size(); ++st) {
    stages.push_back({{"mfu", windowed(series.flops[st], w.peak_flops_per_s)},
                      {"mbu", windowed(series.hbm_bytes[st], w.hbm_bytes_per_s)}});
    if (stage_tdp_w.empty()) continue;
    // Busy power within the window, and the idle floor for the rest of it.
    const std::vector<double> busy = windowed(series.busy_s, 1.0);
    std::vector<double> power_w = windowed(series.busy_tdp_s[st], 1.0 / stage_tdp_w[st]);
    for (size_t k = 1; k < power_w.size(); ++k)
      power_w[k] += stage_tdp_w[st] * PowerModel::kIdleFraction * std::max(0.0, 1.0 - busy[k]);
    power_w[0] = stage_tdp_w[st] * PowerModel::kIdleFraction;
    stages.back()["power_w"] = std::move(power_w);
  }
}

void Metrics::set_network(ClusterNetwork* network) {
  network_ = network;
  link_transfer_s_.assign(2 * network->links(), {});
}

void Metrics::on_kv_transfer(const Request& r, Time duration, double bytes, bool migration) {
  ++(migration ? kv_migrations_ : kv_transfers_);
  (migration ? kv_migration_bytes_ : kv_transfer_bytes_) += bytes;
  if (counted(r))
    (migration ? latencies_.kv_migration_ms : latencies_.kv_transfer_ms).add(duration.to_ms());
}

void Metrics::start_sampling() {
  sim_.schedule_at(Time{}, Phase::kSample, [this] { sample(); });
}

/// A closed-form stretch: the first gap is each request's own, the later ones are shared by
/// every request of the batch, so they are added once with a count (exact, O(n + steps)).
void Metrics::on_decode_stretch(const std::vector<ScheduledItem>& items,
                                std::span<const int64_t> step_end_ns) {
  uint64_t counted_requests = 0;
  for (const ScheduledItem& item : items) {
    if (!counted(*item.request)) continue;
    ++counted_requests;
    latencies_.itl.add(Time::from_ns(step_end_ns[0] - item.request->last_token.ns));
  }
  for (size_t j = 1; j < step_end_ns.size(); ++j)
    latencies_.itl.add(Time::from_ns(step_end_ns[j] - step_end_ns[j - 1]), counted_requests);
}

void Metrics::on_finish(Request& r) {
  last_finish_ = std::max(last_finish_, r.finished);
  if (r.truncated) ++truncated_;
  if (r.fault_affected) ++fault_affected_;
  all_output_tokens_ += r.generated_tokens;
  if (counted(r)) {
    input_tokens_ += r.spec.prompt_tokens;
    output_tokens_ += r.generated_tokens;
    const double e2el = (r.finished - r.spec.arrival).to_ms();
    const double ttft = (r.first_token - r.spec.arrival).to_ms();
    latencies_.e2el_ms.add(e2el);
    latencies_.queue_ms.add((r.first_scheduled - r.spec.arrival).to_ms());
    window_e2el_ms_.push_back(e2el);
    if (r.fault_affected) latencies_.fault_affected_e2el_ms.add(e2el);
    if (r.misrouted) {
      latencies_.misrouted_e2el_ms.add(e2el);
      misrouted_preemptions_ += static_cast<uint64_t>(r.preemptions);
    }
    double tpot = 0;
    if (r.generated_tokens > 1) {
      tpot = (e2el - ttft) / static_cast<double>(r.generated_tokens - 1);
      latencies_.tpot_ms.add(tpot);
    }
    const SloSpec& slo = options_.slo;
    const bool ttft_met = slo.ttft_ms <= 0 || ttft <= slo.ttft_ms;
    const bool tpot_met = slo.tpot_ms <= 0 || tpot <= slo.tpot_ms;
    const bool e2el_met = slo.e2el_ms <= 0 || e2el <= slo.e2el_ms;
    const bool good = ttft_met && tpot_met && e2el_met;
    if (good) ++good_;
    auto count_met = [&](SloMet& m) {
      m.ttft += ttft_met;
      m.tpot += tpot_met;
      m.e2el += e2el_met;
      m.all += good;
    };
    count_met(slo_met_);
    if (r.instance >= 0) {
      InstanceLatencies& mine = per_instance_[static_cast<size_t>(r.instance)];
      mine.ttft_ms.add(ttft);
      if (r.generated_tokens > 1) mine.tpot_ms.add(tpot);
      mine.e2el_ms.add(e2el);
      mine.output_tokens += r.generated_tokens;
      count_met(mine.slo_met);
    }
  }
  record_request(r, "finished", "");
}

void Metrics::on_drop(Request& r, std::string_view reason) {
  if (r.fault_affected) ++fault_affected_;
  if (counted(r)) {
    ++counted_dropped_;
    if (r.instance >= 0) ++per_instance_[static_cast<size_t>(r.instance)].dropped;
  }
  ++drops_by_instance_[r.instance >= 0 ? instances_[r.instance]->name() : "(none)"];
  record_request(r, "dropped", reason);
}

void Metrics::add_slo_attainment(nlohmann::ordered_json& out, const SloMet& met,
                                 uint64_t requests) const {
  if (!has_slo()) return;
  const SloSpec& slo = options_.slo;
  auto fraction = [&](uint64_t n) {
    return requests > 0 ? static_cast<double>(n) / static_cast<double>(requests) : 0.0;
  };
  nlohmann::ordered_json a;
  a["requests"] = requests;
  if (slo.ttft_ms > 0) a["ttft"] = fraction(met.ttft);
  if (slo.tpot_ms > 0) a["tpot"] = fraction(met.tpot);
  if (slo.e2el_ms > 0) a["e2el"] = fraction(met.e2el);
  a["all"] = fraction(met.all);
  out["slo_attainment"] = std::move(a);
}

void Metrics::add_instance_summary(nlohmann::ordered_json& out, size_t index, double duration_s) {
  InstanceLatencies& mine = per_instance_[index];
  const uint64_t completed = mine.e2el_ms.count();
  out["completed"] = completed;
  out["request_throughput"] = duration_s > 0 ? static_cast<double>(completed) / duration_s : 0.0;
  out["output_throughput"] =
      duration_s > 0 ? static_cast<double>(mine.output_tokens) / duration_s : 0.0;
  bool exact = mine.ttft_ms.add_summary(out, "ttft_ms");
  exact = mine.tpot_ms.add_summary(out, "tpot_ms") && exact;
  exact = mine.e2el_ms.add_summary(out, "e2el_ms") && exact;
  add_slo_attainment(out, mine.slo_met, completed + mine.dropped);
  // Its own flag: the summary's list of approximate metrics stays about the summary.
  out["percentiles_exact"] = exact;
}

void Metrics::record_request(const Request& r, std::string_view status, std::string_view reason) {
  if (elements_out_) {
    // Straight to text, into a buffer kept between records: one write per record.
    record_text_.assign(records_written_++ == 0 ? "\n" : ",\n");
    RecordText text(record_text_);
    describe_request(text, r, status, r.instance >= 0 ? quoted_names_[r.instance] : quoted_none_,
                     reason);
    text.finish();
    elements_out_->write(record_text_.data(), static_cast<std::streamsize>(record_text_.size()));
    return;
  }
  if (!options_.keep_records && !options_.records_out) return;
  RecordJson record;
  describe_request(record, r, status, r.instance >= 0 ? instances_[r.instance]->name() : "",
                   reason);
  if (options_.records_out) {
    *options_.records_out << json_text(record.json, -1) << '\n';  // streamed: nothing kept
    return;
  }
  records_.push_back(std::move(record.json));
}

void Metrics::sample() {
  sample_times_s_.push_back(sim_.now().to_s());
  if (on_sample_) on_sample_();
  for (size_t i = 0; i < instances_.size(); ++i) {
    const Instance& inst = *instances_[i];
    const auto& pool = inst.kv_pool();
    series_[i].kv_used_fraction.push_back(static_cast<double>(inst.kv_used_blocks_now()) /
                                          static_cast<double>(pool.total_blocks()));
    series_[i].waiting.push_back(static_cast<int64_t>(inst.num_waiting()));
    series_[i].running.push_back(static_cast<int64_t>(inst.num_running()));
    series_[i].preemptions.push_back(inst.preemptions());
    Work& now = sample_work_;
    work_at(i, sim_.now().ns, now);
    series_[i].busy_s.push_back(now.busy_s);
    for (size_t st = 0; st < now.flops.size(); ++st) {
      series_[i].flops[st].push_back(now.flops[st]);
      series_[i].hbm_bytes[st].push_back(now.hbm_bytes[st]);
      series_[i].busy_tdp_s[st].push_back(now.busy_tdp_s[st]);
    }
  }
  if (network_) {
    network_->settle();
    for (size_t c = 0; c < link_transfer_s_.size(); ++c)
      link_transfer_s_[c].push_back(
          network_->stats(static_cast<int>(c / 2), c % 2 == 0).transfer_seconds);
  }
  p99_e2el_ms_by_window_.push_back(percentile_select(window_e2el_ms_, 99));
  window_e2el_ms_.clear();
  if (sample_times_s_.size() > kMaxSamples) thin_series();  // odd: the newest sample stays
  // Keep sampling while anything else is still to happen.
  if (sim_.pending_events() > 0)
    sim_.schedule_in(Time::from_s(interval_s_), Phase::kSample, [this] { sample(); });
}

void Metrics::thin_series() {
  // Samples 0, 2, 4, ... stay, and sample 2k's window also covers the one sample 2k - 1 closed.
  auto keep_even = [](auto& v) {
    for (size_t i = 0; 2 * i < v.size(); ++i) v[i] = v[2 * i];
    v.resize((v.size() + 1) / 2);
  };
  for (size_t i = 1; 2 * i < p99_e2el_ms_by_window_.size(); ++i)
    p99_e2el_ms_by_window_[2 * i] =
        std::max(p99_e2el_ms_by_window_[2 * i], p99_e2el_ms_by_window_[2 * i - 1]);
  keep_even(p99_e2el_ms_by_window_);
  keep_even(sample_times_s_);
  for (Series& s : series_) {
    keep_even(s.kv_used_fraction);
    keep_even(s.waiting);
    keep_even(s.running);
    keep_even(s.preemptions);
    keep_even(s.busy_s);  // cumulative: thinning keeps them exact
    for (auto& v : s.flops) keep_even(v);
    for (auto& v : s.hbm_bytes) keep_even(v);
    for (auto& v : s.busy_tdp_s) keep_even(v);
  }
  for (auto& cumulative : link_transfer_s_) keep_even(cumulative);
  interval_s_ *= 2;
}

}  // namespace servesim

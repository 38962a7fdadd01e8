#include "run/metrics.h"

#include <algorithm>
#include <ostream>

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
}

void Metrics::start_sampling() {
  sim_.schedule_at(Time{}, Phase::kSample, [this] { sample(); });
}

/// A closed-form stretch: the first gap is each request's own, the later ones are shared by
/// every request of the batch, so they are added once with a count (exact, O(n + steps)).
void Metrics::on_decode_stretch(const std::vector<ScheduledItem>& items,
                                const std::vector<int64_t>& step_end_ns) {
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
  if (!options_.keep_records && !options_.records_out) return;
  if (options_.records_out && options_.records_out_as_elements) {
    // Straight to text, into a buffer kept between records: one write per record.
    record_text_.assign(records_written_++ == 0 ? "\n" : ",\n");
    RecordText text(record_text_);
    describe_request(text, r, status, r.instance >= 0 ? quoted_names_[r.instance] : quoted_none_,
                     reason);
    text.finish();
    options_.records_out->write(record_text_.data(),
                                static_cast<std::streamsize>(record_text_.size()));
    return;
  }
  RecordJson record;
  describe_request(record, r, status, r.instance >= 0 ? instances_[r.instance]->name() : "",
                   reason);
  if (options_.records_out) {
    *options_.records_out << record.json.dump() << '\n';  // streamed: nothing kept per request
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
  }
  std::sort(window_e2el_ms_.begin(), window_e2el_ms_.end());
  p99_e2el_ms_by_window_.push_back(
      window_e2el_ms_.empty() ? 0.0 : percentile_sorted(window_e2el_ms_, 99));
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
  }
  interval_s_ *= 2;
}

}  // namespace servesim

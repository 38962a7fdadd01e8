#include "run/result.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <initializer_list>
#include <type_traits>
#include <utility>

#include "run/scenario_hash.h"
#include "sim/stats.h"

namespace servesim {
namespace {

/// The sketch's bound, 2^-10, rounded up to cover the conversion to milliseconds.
constexpr double kStatedRelativeError = 0.001;
static_assert(QuantileSketch::kRelativeError < kStatedRelativeError);

}  // namespace

nlohmann::ordered_json build_result(const ResultInputs& in) {
  const Scenario& scenario = in.scenario;
  const Gateway& gateway = in.gateway;
  Metrics& metrics = in.metrics;
  Metrics::Latencies& latencies = metrics.latencies();
  const Cluster& cluster = *scenario.cluster;
  nlohmann::ordered_json result;
  const Time end = in.end;
  const double duration_s =
      gateway.first_arrival() == Time::max()
          ? 0.0
          : (std::max(metrics.last_finish(), gateway.first_arrival()) - gateway.first_arrival())
                .to_s();

  auto& meta = result["servesim"];
  meta["version"] = SERVESIM_VERSION;
  meta["scenario"] = scenario.name;
  meta["seed"] = scenario.seed;
  meta["command_line"] = in.command_line;
  meta["engine"] = scenario.engine;
  // Stated when set: every TTFT and E2E then includes it.
  if (scenario.frontend_latency > Time{})
    meta["frontend_latency_s"] = scenario.frontend_latency.to_s();
  meta["model"] = scenario.model.name;
  meta["scenario_hash"] = scenario_hash(scenario.doc);  // the scenario after --set

  auto& s = result["summary"];
  s["completed"] = gateway.completed();
  s["dropped"] = gateway.dropped();
  s["arrived"] = gateway.arrived();
  s["truncated"] = metrics.truncated();
  s["duration_s"] = duration_s;
  s["total_input_tokens"] = metrics.input_tokens();
  s["total_output_tokens"] = metrics.output_tokens();
  const double counted_completed = static_cast<double>(latencies.e2el_ms.count());
  s["request_throughput"] = duration_s > 0 ? counted_completed / duration_s : 0.0;
  s["output_throughput"] =
      duration_s > 0 ? static_cast<double>(metrics.output_tokens()) / duration_s : 0.0;
  s["total_token_throughput"] =
      duration_s > 0
          ? static_cast<double>(metrics.input_tokens() + metrics.output_tokens()) / duration_s
          : 0.0;
  if (metrics.has_slo())
    s["request_goodput"] = duration_s > 0 ? static_cast<double>(metrics.good()) / duration_s : 0.0;
  metrics.add_slo_attainment(s, metrics.slo_met(), metrics.slo_requests());
  // Metrics whose percentiles come from a sketch (past the exact sample counts).
  std::vector<std::string> approximate;
  const auto summarize = [&](nlohmann::ordered_json& out, const std::string& name,
                             const std::string& label, auto& samples) {
    bool exact;
    if constexpr (std::is_same_v<std::decay_t<decltype(samples)>, RunLengthSamples>)
      exact = add_latency_summary(out, name, samples);
    else
      exact = samples.add_summary(out, name);
    if (!exact) approximate.push_back(label);
  };
  summarize(s, "ttft_ms", "ttft_ms", latencies.ttft_ms);
  summarize(s, "tpot_ms", "tpot_ms", latencies.tpot_ms);
  summarize(s, "itl_ms", "itl_ms", latencies.itl);
  summarize(s, "e2el_ms", "e2el_ms", latencies.e2el_ms);
  summarize(s, "queue_ms", "queue_ms", latencies.queue_ms);
  if (scenario.disaggregated) {
    // Disaggregated serving: each hand-off's KV, from prefill end to arrival at its decode replica.
    s["kv_transfers"] = metrics.kv_transfers();
    s["kv_transfer_bytes"] = metrics.kv_transfer_bytes();
    summarize(s, "kv_transfer_ms", "kv_transfer_ms", latencies.kv_transfer_ms);
  }
  if (scenario.migrate_on_preemption) {
    // Preemptions that moved the request's KV to another replica, from preemption to arrival.
    s["kv_migrations"] = metrics.kv_migrations();
    s["kv_migration_bytes"] = metrics.kv_migration_bytes();
    summarize(s, "kv_migration_ms", "kv_migration_ms", latencies.kv_migration_ms);
  }
  uint64_t preemptions = 0;
  for (const auto& inst : in.instances) preemptions += inst->preemptions();
  s["preemptions"] = preemptions;
  int64_t prefill_tokens = 0, prefix_hit_tokens = 0;
  for (const auto& inst : in.instances) {
    prefill_tokens += inst->prefill_tokens();
    prefix_hit_tokens += inst->prefix_hit_tokens();
  }
  // Tokens prefilled (prompts, and contexts again after preemption) and those a prefix cache
  // supplied instead; reuse fraction = hits / (hits + prefilled).
  s["prefill_tokens"] = prefill_tokens;
  s["prefix_hit_tokens"] = prefix_hit_tokens;
  s["prefix_reuse_fraction"] = prefill_tokens + prefix_hit_tokens > 0
                                   ? static_cast<double>(prefix_hit_tokens) /
                                         static_cast<double>(prefill_tokens + prefix_hit_tokens)
                                   : 0.0;
  // Present when preempted requests found some of their own KV still cached on their return
  // (EnginePreset::preempted_kv): tokens neither prefilled again nor counted as prefix hits.
  int64_t preempted_kv_reused_tokens = 0;
  for (const auto& inst : in.instances)
    preempted_kv_reused_tokens += inst->preempted_kv_reused_tokens();
  if (preempted_kv_reused_tokens > 0) s["preempted_kv_reused_tokens"] = preempted_kv_reused_tokens;
  if (in.size_class_routing) {
    // Requests whose predicted class differs from their true class, and what they cost.
    s["misroutes"] = latencies.misrouted_e2el_ms.count();
    s["misrouted_preemptions"] = metrics.misrouted_preemptions();
    summarize(s, "e2el_ms_misrouted", "e2el_ms_misrouted", latencies.misrouted_e2el_ms);
  }
  s["warmup_requests_discarded"] =
      std::min<int64_t>(metrics.warmup_requests(), static_cast<int64_t>(gateway.arrived()));

  const double makespan_s = end.to_s();
  result["instances"] = nlohmann::ordered_json::array();
  result["gpus"] = nlohmann::ordered_json::array();
  // References into `result` hold only until a key is added to it (its keys live in a vector):
  // both keys first, then the references, and no key added while they are in use.
  auto& instances = result["instances"];
  auto& gpus = result["gpus"];
  // Bytes per link and direction ([0] from its end A to B, [1] back): a link's two directions
  // are independent channels of its bandwidth each.
  std::vector<std::array<double, 2>> link_bytes(cluster.links().size(), {0.0, 0.0});
  auto add_path_bytes = [&](const Path& path, double bytes, bool along) {
    for (size_t k = 0; k < path.link_ids.size(); ++k)
      link_bytes[static_cast<size_t>(path.link_ids[k])][path.forward[k] == along ? 0 : 1] += bytes;
  };
  double total_energy_j = 0;
  bool all_gpus_rated = true;
  for (size_t index = 0; index < in.instances.size(); ++index) {
    const auto& inst = in.instances[index];
    const InstanceConfig& c = inst->config();
    const MemoryPlan& m = inst->memory();
    const double busy = makespan_s > 0 ? inst->busy_time().to_s() / makespan_s : 0.0;
    const double block_bytes = m.kv_bytes_per_token * static_cast<double>(c.block_tokens);
    const double peak_kv_bytes = static_cast<double>(inst->kv_pool().peak_blocks()) * block_bytes;
    nlohmann::ordered_json j;
    j["name"] = c.name;
    j["gpu_type"] = inst->cost_config().gpu.name;
    j["calibrated"] = inst->cost_config().fit != nullptr;
    j["cost_source"] = inst->cost_config().kernel_db ? "kernel_db"
                       : inst->cost_config().fit     ? "fit"
                                                     : "roofline";
    if (scenario.disaggregated) j["role"] = instance_role_name(c.role);
    j["tp"] = c.tp;
    j["pp"] = c.pp;
    if (c.pp > 1) j["pp_microbatching"] = c.pp_microbatching;
    if (inst->cost_config().model.moe()) {
      j["ep"] = c.moe.ep;
      j["attention_dp"] = c.moe.attention_dp;
      j["ep_intra_node_bytes_per_gpu"] = inst->ep_intra_bytes_per_gpu();
      j["ep_inter_node_bytes_per_gpu"] = inst->ep_inter_bytes_per_gpu();
    }
    std::vector<std::string> gpu_names;
    for (int g : c.gpus) gpu_names.push_back(cluster.gpus()[g].name);
    j["gpus"] = gpu_names;
    j["requests"] = inst->requests_seen();
    j["iterations"] = inst->iterations();
    j["preemptions"] = inst->preemptions();
    if (scenario.migrate_on_preemption) j["migrations"] = inst->migrations();
    if (inst->step_traffic()) {
      // Its network-crossing transfers ran as flows: the steps that sent some, and the time
      // they waited beyond their price for links other flows shared.
      j["network_steps"] = inst->network_steps();
      j["network_wait_s"] = inst->network_wait_s();
    }
    j["busy_fraction"] = busy;
    j["kv_capacity_tokens"] = inst->kv_capacity_tokens();
    j["kv_capacity_blocks"] = inst->kv_pool().total_blocks();
    j["kv_peak_blocks"] = inst->kv_pool().peak_blocks();
    j["max_context_tokens"] = inst->max_context_tokens();
    j["peak_running"] = inst->peak_running();
    j["prefix_cached_blocks_at_end"] = inst->cached_prefix_blocks();
    if (inst->host_kv_pool().total_blocks() > 0) {
      j["host_kv_capacity_tokens"] = inst->host_kv_pool().capacity_tokens();
      j["host_kv_peak_blocks"] = inst->host_kv_pool().peak_blocks();
    }
    j["memory_per_gpu"] = {{"total_bytes", m.gpu_memory_bytes},
                           {"weights_bytes", m.weight_bytes},
                           {"reserve_bytes", m.reserve_bytes},
                           {"kv_bytes", m.kv_bytes},
                           {"peak_used_bytes", m.weight_bytes + m.reserve_bytes + peak_kv_bytes}};
    // The summary's figures over the requests that finished on this replica.
    metrics.add_instance_summary(j["summary"], index, duration_s);
    instances.push_back(std::move(j));
    for (size_t k = 0; k < c.gpus.size(); ++k) {
      const int g = c.gpus[k];
      nlohmann::ordered_json gj;
      gj["name"] = cluster.gpus()[g].name;
      gj["type"] = cluster.gpus()[g].spec.name;
      gj["instance"] = c.name;
      gj["busy_fraction"] = makespan_s > 0 ? inst->stage_busy_s() / makespan_s : 0.0;
      gj["memory_bytes"] = cluster.gpus()[g].spec.memory_bytes;
      gj["peak_memory_bytes"] = m.weight_bytes + m.reserve_bytes + peak_kv_bytes;
      const int stage = static_cast<int>(k) / c.tp;
      metrics.add_gpu_utilisation(gj, index, stage, makespan_s);
      // Power and energy only for GPUs whose TDP is known (models/power.h).
      if (const double tdp_w = cluster.gpus()[g].spec.tdp_w; tdp_w > 0) {
        const double energy_j = metrics.gpu_energy_j(index, stage, tdp_w, makespan_s);
        gj["tdp_w"] = tdp_w;
        gj["energy_j"] = energy_j;
        gj["mean_power_w"] = makespan_s > 0 ? energy_j / makespan_s : 0.0;
        total_energy_j += energy_j;
      } else {
        all_gpus_rated = false;
      }
      gpus.push_back(std::move(gj));
    }
    // Transfers that crossed the network as flows (models/step_traffic.h) are counted by the
    // flow network below; the others as the replica priced them.
    const bool on_flows = inst->step_traffic() != nullptr;
    auto priced = [&](const Path& p) {
      return !on_flows || std::none_of(p.link_ids.begin(), p.link_ids.end(), [&](int l) {
        return cluster.links()[static_cast<size_t>(l)].kind == LinkKind::kNetwork;
      });
    };
    // Each TP rank sends to its ring neighbour (the ring of its stage, over the stage's layers);
    // each PP stage's ranks send their shard on.
    const int64_t layers = inst->cost_config().model.num_layers;
    for (int st = 0; st < c.pp; ++st) {
      const double stage_share = stage_layer_share(layers, c.pp, st);
      for (int t = 0; t < c.tp && c.tp > 1; ++t) {
        const Path p = cluster.gpu_path(c.gpus[static_cast<size_t>(st * c.tp + t)],
                                        c.gpus[static_cast<size_t>(st * c.tp + (t + 1) % c.tp)]);
        if (priced(p)) add_path_bytes(p, stage_share * inst->tp_bytes_per_gpu(), true);
      }
      if (st + 1 < c.pp)
        for (int t = 0; t < c.tp; ++t) {
          const Path p = cluster.gpu_path(c.gpus[static_cast<size_t>(st * c.tp + t)],
                                          c.gpus[static_cast<size_t>((st + 1) * c.tp + t)]);
          if (priced(p)) add_path_bytes(p, inst->pp_bytes_per_hop() / c.tp, true);
        }
    }
    // EP all-to-all: each GPU of a stage sends its node-local bytes evenly to the peers of its
    // node, and its bytes for other nodes evenly to their GPUs.
    if (inst->ep_intra_bytes_per_gpu() + inst->ep_inter_bytes_per_gpu() > 0)
      for (int st = 0; st < c.pp; ++st) {
        const double stage_share = stage_layer_share(layers, c.pp, st);
        for (int a = 0; a < c.tp; ++a) {
          const int from = c.gpus[static_cast<size_t>(st * c.tp + a)];
          int same = 0, other = 0;
          for (int b = 0; b < c.tp; ++b) {
            const int to = c.gpus[static_cast<size_t>(st * c.tp + b)];
            if (to == from) continue;
            (cluster.gpus()[to].node == cluster.gpus()[from].node ? same : other) += 1;
          }
          for (int b = 0; b < c.tp; ++b) {
            const int to = c.gpus[static_cast<size_t>(st * c.tp + b)];
            if (to == from) continue;
            const bool local = cluster.gpus()[to].node == cluster.gpus()[from].node;
            if (!local && on_flows) continue;  // the flows'
            add_path_bytes(cluster.gpu_path(from, to),
                           stage_share * (local ? inst->ep_intra_bytes_per_gpu() / same
                                                : inst->ep_inter_bytes_per_gpu() / other),
                           true);
          }
        }
      }
    // KV offload: each GPU's writes to and reads from host memory cross its own PCIe link.
    for (int g : c.gpus) {
      const Path to_host = cluster.host_path(g);
      add_path_bytes(to_host, inst->priced_gpu_to_host_bytes_per_gpu(), true);
      add_path_bytes(to_host, inst->priced_host_to_gpu_bytes_per_gpu(), false);
    }
  }
  // Flows (KV hand-offs) add their bytes per direction.
  if (in.network)
    for (const Link& l : cluster.links())
      for (int d = 0; d < 2; ++d)
        link_bytes[static_cast<size_t>(l.id)][static_cast<size_t>(d)] +=
            in.network->stats(l.id, d == 0).bytes;
  if (all_gpus_rated) {
    // Over every GPU holding a replica and the whole run, warm-up included.
    auto& e = result["summary"];
    const auto completed = static_cast<double>(gateway.completed());
    const auto tokens = static_cast<double>(metrics.all_output_tokens());
    e["energy_j"] = total_energy_j;
    e["energy_per_request_j"] = completed > 0 ? total_energy_j / completed : 0.0;
    e["energy_per_output_token_j"] = tokens > 0 ? total_energy_j / tokens : 0.0;
  }
  auto& links = result["links"] = nlohmann::ordered_json::array();
  for (const Link& l : cluster.links()) {
    const auto [forward, back] = link_bytes[static_cast<size_t>(l.id)];
    if (forward + back <= 0) continue;
    // Demand: the busier direction's bytes over what it could carry in the run. Above 1 the
    // link is oversubscribed, which the per-transfer pricing does not slow down; busy time
    // cannot exceed the run, so busy_fraction is bounded by 1 and the excess stays visible.
    const double demand =
        makespan_s > 0 ? std::max(forward, back) / l.spec.bandwidth_bytes_per_s / makespan_s : 0.0;
    links.push_back({{"name", l.name},
                     {"kind", link_kind_name(l.kind)},
                     {"bandwidth_bytes_per_s", l.spec.bandwidth_bytes_per_s},
                     {"bytes", forward + back},
                     {"bytes_forward", forward},
                     {"bytes_back", back},
                     {"busy_fraction", std::min(1.0, demand)},
                     {"demand_fraction", demand}});
    if (in.network) {
      // The flows on it, per direction: bytes, time with any flow on it, how many at once.
      const FlowNetwork::LinkStats& f = in.network->stats(l.id, true);
      const FlowNetwork::LinkStats& b = in.network->stats(l.id, false);
      auto& j = links.back();
      j["flow_bytes_forward"] = f.bytes;
      j["flow_bytes_back"] = b.bytes;
      j["flow_busy_fraction"] = makespan_s > 0 ? std::max(f.busy_s, b.busy_s) / makespan_s : 0.0;
      j["mean_flows"] =
          makespan_s > 0 ? std::max(f.flow_seconds, b.flow_seconds) / makespan_s : 0.0;
      j["peak_flows"] = std::max(f.peak_flows, b.peak_flows);
    }
  }

  auto& ts = result["timeseries"];
  ts["sample_interval_s"] = metrics.sample_interval_s();
  ts["time_s"] = metrics.sample_times_s();
  auto& per = ts["instances"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < in.instances.size(); ++i) {
    per.push_back({{"name", in.instances[i]->name()},
                   {"kv_used_fraction", metrics.series()[i].kv_used_fraction},
                   {"waiting", metrics.series()[i].waiting},
                   {"running", metrics.series()[i].running},
                   {"preemptions", metrics.series()[i].preemptions}});
    const InstanceConfig& c = in.instances[i]->config();
    std::vector<double> stage_tdp_w(static_cast<size_t>(c.pp), 0.0);
    for (size_t k = 0; k < c.gpus.size(); ++k)
      stage_tdp_w[k / static_cast<size_t>(c.tp)] += cluster.gpus()[c.gpus[k]].spec.tdp_w / c.tp;
    const bool rated = std::all_of(c.gpus.begin(), c.gpus.end(),
                                   [&](int g) { return cluster.gpus()[g].spec.tdp_w > 0; });
    metrics.add_utilisation_series(per.back(), i, rated ? stage_tdp_w : std::vector<double>{});
  }
  ts["p99_e2el_ms"] = metrics.p99_e2el_ms_by_window();
  if (in.network) {
    // Per link that carried flows, per direction: the fraction of its bandwidth used over each
    // sample interval (cumulative transfer time differenced; 0 at the first sample).
    const auto& times = metrics.sample_times_s();
    const auto& cumulative = metrics.link_transfer_s();
    auto& per_link = ts["links"] = nlohmann::ordered_json::array();
    for (const Link& l : cluster.links()) {
      const auto li = static_cast<size_t>(l.id);
      if (in.network->stats(l.id, true).bytes + in.network->stats(l.id, false).bytes <= 0) continue;
      nlohmann::ordered_json j;
      j["name"] = l.name;
      for (size_t d = 0; d < 2; ++d) {
        const std::vector<double>& c = cumulative[2 * li + d];
        std::vector<double> used(c.size(), 0.0);
        for (size_t k = 1; k < c.size(); ++k)
          used[k] = times[k] > times[k - 1] ? (c[k] - c[k - 1]) / (times[k] - times[k - 1]) : 0.0;
        j[d == 0 ? "used_fraction_forward" : "used_fraction_back"] = used;
      }
      per_link.push_back(std::move(j));
    }
  }
  if (in.faults) {  // after the sections above: adding a key may move them
    auto& f = result["faults"];
    f["requests_affected"] = metrics.fault_affected();
    f["requests_rerouted"] = in.faults->rerouted();
    f["requests_dropped"] = in.faults->dropped();
    f["lost_tokens"] = in.faults->lost_tokens();
    summarize(f, "e2el_ms", "faults/e2el_ms", latencies.fault_affected_e2el_ms);
    auto& events = f["events"] = nlohmann::ordered_json::array();
    for (const FaultEvent& e : in.faults->events())
      events.push_back({{"time_s", e.time.to_s()},
                        {"kind", std::string(fault_kind_name(e.kind))},
                        {"target", e.target},
                        {"action", e.action},
                        {"requests_rerouted", e.rerouted},
                        {"requests_dropped", e.dropped},
                        {"lost_tokens", e.lost_tokens}});
  }
  if (!approximate.empty()) {
    // Absent when every percentile is exact, which keeps small runs' results as they were.
    // Not through `s`: keys added to the result since may have moved the summary.
    auto& a = result["summary"]["approximate_percentiles"];
    a["metrics"] = approximate;
    a["relative_error"] = kStatedRelativeError;
    a["exact_samples"] = metrics.exact_samples();
  }
  if (!metrics.drops_by_instance().empty())
    result["drops_by_instance"] = metrics.drops_by_instance();
  if (!in.keep_records) return result;
  // The records first: a result file streams them as requests complete (tools/output_file.h),
  // ahead of the rest, which is known only at the end. Added last all the same, so that no
  // reference taken above into `result` is moved while it is in use.
  nlohmann::ordered_json with_records;
  with_records["requests"] = std::move(metrics.records());
  for (auto it = result.begin(); it != result.end(); ++it) with_records[it.key()] = std::move(*it);
  return with_records;
}

std::string summary_table(const std::string& scenario_name, const nlohmann::ordered_json& s) {
  std::string out = fmt::format("{:=^60}\n", fmt::format(" {} ", scenario_name));
  auto row = [&](std::string_view label, const nlohmann::ordered_json& v, int precision) {
    if (v.is_number_integer() || v.is_number_unsigned())
      out += fmt::format("{:<40}{:>20}\n", label, v.get<int64_t>());
    else
      out += fmt::format("{:<40}{:>20.{}f}\n", label, v.get<double>(), precision);
  };
  row("Successful requests:", s["completed"], 0);
  row("Dropped requests:", s["dropped"], 0);
  row("Benchmark duration (s):", s["duration_s"], 2);
  row("Total input tokens:", s["total_input_tokens"], 0);
  row("Total generated tokens:", s["total_output_tokens"], 0);
  row("Request throughput (req/s):", s["request_throughput"], 2);
  // As benchmark_serving prints goodput, only when SLOs are set.
  if (s.contains("request_goodput")) row("Request goodput (req/s):", s["request_goodput"], 2);
  row("Output token throughput (tok/s):", s["output_throughput"], 2);
  if (s.contains("slo_attainment")) {
    const auto& a = s["slo_attainment"];
    for (const auto& [key, label] : std::initializer_list<std::pair<const char*, const char*>>{
             {"ttft", "TTFT"}, {"tpot", "TPOT"}, {"e2el", "E2EL"}, {"all", "all SLOs"}})
      if (a.contains(key))
        row(fmt::format("SLO attainment, {} (%):", label), 100.0 * a[key].get<double>(), 2);
  }
  row("Preemptions:", s["preemptions"], 0);
  // Headings and labels as vLLM's benchmark_serving prints them ("Mean TTFT (ms):").
  struct Metric {
    const char* heading;
    const char* label;
    const char* key;
  };
  for (const Metric& m : {Metric{"Time to First Token", "TTFT", "ttft_ms"},
                          Metric{"Time per Output Token (excl. 1st token)", "TPOT", "tpot_ms"},
                          Metric{"Inter-token Latency", "ITL", "itl_ms"},
                          Metric{"End-to-end Latency", "E2EL", "e2el_ms"}}) {
    out += fmt::format("{:-^60}\n", fmt::format("{}", m.heading));
    row(fmt::format("Mean {} (ms):", m.label), s[std::string("mean_") + m.key], 2);
    row(fmt::format("Median {} (ms):", m.label), s[std::string("median_") + m.key], 2);
    row(fmt::format("P99 {} (ms):", m.label), s[std::string("p99_") + m.key], 2);
  }
  out += fmt::format("{:=^60}\n", "");
  return out;
}

}  // namespace servesim

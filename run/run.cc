#include "run/run.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "models/instance.h"
#include "models/network.h"
#include "models/step_traffic.h"
#include "policies/batchers.h"
#include "policies/gateway.h"
#include "policies/kv_transfer.h"
#include "policies/predictor.h"
#include "policies/router.h"
#include "run/metrics.h"
#include "run/result.h"
#include "sim/error.h"
#include "sim/simulator.h"
#include "traces/workload.h"

namespace servesim {
namespace {

/// A fresh, writable copy of a validated configuration (run/scenario.h), read through the
/// strict reader so its messages keep the scenario's file and pointer.
struct ConfigCopy {
  ConfigCopy(const Scenario& s, const ConfigObject& c)
      : json(c.json),
        object(JsonValue(&json, c.pointer, std::make_shared<const std::string>(s.file)).object()) {}
  ConfigCopy(const ConfigCopy&) = delete;  // `object` points into `json`
  ConfigCopy& operator=(const ConfigCopy&) = delete;
  nlohmann::json json;
  JsonObject object;
};

/// A policy built from its validated configuration.
template <typename Registry, typename... Args>
auto build(const Registry& registry, const Scenario& s, const ConfigObject& c, Args&&... args) {
  ConfigCopy copy(s, c);
  const JsonValue name = copy.object.at("name");
  return registry.create(name.as_string(), name, copy.object, std::forward<Args>(args)...);
}

/// What the replicas must hold at the end: no request, no KV block but the prefix cache's, and
/// every offloaded byte sent, received and freed alike.
void check_instances(const std::vector<std::unique_ptr<Instance>>& instances) {
  for (const auto& inst : instances) {
    const auto& pool = inst->kv_pool();
    SERVESIM_CHECK(inst->idle(), "instance {} still has work at the end", inst->name());
    SERVESIM_CHECK(pool.used_blocks() == inst->cached_prefix_blocks(),
                   "instance {} leaks {} KV blocks", inst->name(),
                   pool.used_blocks() - inst->cached_prefix_blocks());
    SERVESIM_CHECK(inst->host_kv_pool().used_blocks() == 0, "instance {} leaks {} host KV blocks",
                   inst->name(), inst->host_kv_pool().used_blocks());
    // Bytes the GPUs sent to host (priced per iteration) = bytes the host tier received (block
    // moves) = bytes the host tier gave up when requests ended.
    const double sent = inst->priced_gpu_to_host_bytes_per_gpu();
    const double received = inst->offloaded_bytes_per_gpu();
    SERVESIM_CHECK(
        std::abs(sent - received) <= 1e-9 * std::max(1.0, received) &&
            std::abs(received - inst->host_freed_bytes_per_gpu()) <= 1e-9 * std::max(1.0, received),
        "instance {}: offload bytes not conserved: {} sent, {} received, {} freed", inst->name(),
        sent, received, inst->host_freed_bytes_per_gpu());
    SERVESIM_CHECK(inst->incoming_tokens() == 0,
                   "instance {} still expects {} tokens of requests whose KV never arrived",
                   inst->name(), inst->incoming_tokens());
    SERVESIM_CHECK(pool.peak_blocks() <= pool.total_blocks(),
                   "instance {} peaked at {} KV blocks of {}", inst->name(), pool.peak_blocks(),
                   pool.total_blocks());
  }
}

}  // namespace

ScenarioOptions scenario_options(const RunOptions& options) {
  return ScenarioOptions{options.seed, options.overrides, options.kernel_db};
}

RunOutput run_scenario(const Scenario& s, const RunOptions& options) {
  RouterRegistry routers("router");
  register_builtin_routers(routers);
  PredictorRegistry predictors("output-length predictor");
  register_builtin_predictors(predictors);
  BatcherRegistry batchers("batcher");
  register_builtin_batchers(batchers);

  // Wiring: specs -> objects. Declaration order is teardown order in reverse: the replicas
  // refer to the simulator, the cluster and the gateway; the gateway to the policies.
  Simulator sim;
  std::vector<std::string> entry_names;  // the replicas arrivals go to
  for (const InstanceSpec& spec : s.instances)
    if (spec.config.role != InstanceRole::kDecode) entry_names.push_back(spec.config.name);
  std::unique_ptr<Router> router = build(routers, s, s.router, entry_names);
  std::unique_ptr<OutputPredictor> predictor = std::make_unique<OraclePredictor>();
  if (s.router.json.contains("output_length")) {
    ConfigCopy copy(s, s.router);
    const JsonValue kind = copy.object.at("output_length");
    predictor = predictors.create(kind.as_string(), kind, copy.object, s.seed);
  }
  ConfigCopy workload_config(s, s.workload);
  std::unique_ptr<Workload> workload = make_workload(workload_config.object, s.base_dir, s.seed);

  const bool stream_requests =
      s.output.record_requests && !options.requests_out && options.result_requests_out;
  Metrics metrics(
      sim, MetricsOptions{workload->warmup_requests(), s.slo, s.output.sample_interval_s,
                          s.output.record_requests, options.requests_out, s.output.exact_samples});
  Gateway gateway(*router, *predictor, metrics);
  gateway.set_frontend_latency(s.frontend_latency, &sim);
  // The links are simulated as shared resources only when something moves over them as flows:
  // KV between replicas (disaggregated serving, migration), or iteration traffic that crosses
  // the network where the links may be shared (models/step_traffic.h).
  const bool kv_moves = s.disaggregated || s.migrate_on_preemption;
  std::unique_ptr<ClusterNetwork> network;
  std::vector<std::unique_ptr<StepTraffic>> step_traffic(s.instances.size());
  if (kv_moves || s.iteration_traffic != StepTrafficMode::kPriced)
    network = std::make_unique<ClusterNetwork>(sim, *s.cluster);
  if (s.iteration_traffic != StepTrafficMode::kPriced) {
    std::vector<int> users(2 * s.cluster->links().size(), 0);  // replicas per channel
    for (size_t i = 0; i < s.instances.size(); ++i) {
      const InstanceConfig& c = s.instances[i].config;
      auto traffic = std::make_unique<StepTraffic>(*network, c.gpus, c.tp, c.pp,
                                                   s.instances[i].cost.model.num_layers);
      if (!traffic->crosses_network()) continue;
      for (int ch : traffic->channels()) ++users[static_cast<size_t>(ch)];
      step_traffic[i] = std::move(traffic);
    }
    // Alone on its links a replica's price is exact: it keeps its closed-form stretches.
    if (s.iteration_traffic == StepTrafficMode::kAuto && !kv_moves)
      for (auto& traffic : step_traffic)
        if (traffic && std::none_of(traffic->channels().begin(), traffic->channels().end(),
                                    [&](int ch) { return users[static_cast<size_t>(ch)] > 1; }))
          traffic.reset();
  }
  const bool any_step_traffic =
      std::any_of(step_traffic.begin(), step_traffic.end(), [](const auto& t) { return !!t; });
  if (!kv_moves && !any_step_traffic) network.reset();
  std::vector<std::unique_ptr<Instance>> instances;
  for (size_t i = 0; i < s.instances.size(); ++i) {
    InstanceConfig config = s.instances[i].config;
    // A step whose transfers share links lasts until they end: steps run one by one.
    config.closed_form_decode = !options.exact_steps && !step_traffic[i];
    // A round of micro-batches sends each one's transfers at its own time in the round; the
    // flows send a step's after its compute, so those replicas run one batch at a time.
    if (step_traffic[i]) config.pp_microbatching = false;
    instances.push_back(
        std::make_unique<Instance>(static_cast<int>(i), config, s.instances[i].cost, *s.cluster,
                                   sim, build(batchers, s, s.instances[i].batcher), gateway));
    if (step_traffic[i]) instances.back()->set_step_traffic(step_traffic[i].get());
    gateway.add_instance(instances.back().get(), instances.back().get(), config.role);
    metrics.add_instance(instances.back().get());
  }
  if (network) metrics.set_network(network.get());
  // Disaggregated serving and migration: KV moves as flows on the links.
  std::unique_ptr<Router> decode_router;
  std::unique_ptr<NetworkKvMover> kv_mover;
  if (kv_moves) {
    std::vector<std::string> decode_names;
    std::vector<const Instance*> views;
    for (const auto& inst : instances) {
      views.push_back(inst.get());
      if (inst->config().role == InstanceRole::kDecode) decode_names.push_back(inst->name());
    }
    kv_mover = std::make_unique<NetworkKvMover>(
        *network, std::move(views), kv_bytes_per_token_per_gpu(s.model, s.precision.kv, 1, 1));
    if (s.disaggregated) {
      decode_router = build(routers, s, s.decode_router, decode_names);
      gateway.set_disaggregation(decode_router.get(), kv_mover.get(), &sim);
    }
    if (s.migrate_on_preemption) gateway.set_migration(kv_mover.get(), &sim);
  }
  gateway.set_on_released([&](int64_t client) { workload->on_request_done(sim, client); });
  std::unique_ptr<FaultInjector> faults;
  if (!s.faults.empty()) {
    std::vector<Instance*> views;
    std::vector<CostModelConfig> costs;
    for (size_t i = 0; i < instances.size(); ++i) {
      views.push_back(instances[i].get());
      costs.push_back(s.instances[i].cost);
    }
    faults = std::make_unique<FaultInjector>(sim, gateway, views, *s.cluster, costs, s.faults);
    faults->start();
  }
  if (options.on_progress)
    metrics.set_on_sample([&] {
      options.on_progress(
          {sim.now().to_s(), gateway.arrived(), gateway.completed(), gateway.dropped()});
    });

  // Simulate, then check the conservation laws. The result's records are streamed from here
  // on: what could fail while reading and wiring the scenario has not left half a result.
  if (stream_requests) metrics.write_records_as_elements(options.result_requests_out());
  workload->start(sim, [&](const RequestSpec& spec) { gateway.submit(spec); });
  metrics.start_sampling();
  sim.run();
  gateway.check_conservation();
  check_instances(instances);
  if (network) {
    network->settle();
    network->check_conservation();
    const double kv_bytes = metrics.kv_transfer_bytes() + metrics.kv_migration_bytes();
    double step_bytes = 0;
    for (const auto& traffic : step_traffic)
      if (traffic) step_bytes += traffic->bytes_sent();
    const double moved_bytes = kv_bytes + step_bytes;
    SERVESIM_CHECK(
        std::abs(network->bytes_sent() - moved_bytes) <= 1e-9 * std::max(1.0, moved_bytes),
        "KV bytes handed off and migrated ({}) and iteration traffic sent ({}) differ from the "
        "bytes the links carried ({})",
        kv_bytes, step_bytes, network->bytes_sent());
  }

  RunOutput out;
  out.events = sim.events_processed();
  out.simulated_s = sim.now().to_s();
  out.result =
      build_result({s, gateway, metrics, instances,
                    dynamic_cast<const SizeClassRouter*>(router.get()) != nullptr, faults.get(),
                    network.get(), sim.now(), options.command_line,
                    s.output.record_requests && !options.requests_out && !stream_requests});
  out.requests_streamed = stream_requests;
  out.streamed_requests = metrics.records_written();
  out.summary_table = summary_table(s.name, out.result["summary"]);
  return out;
}

RunOutput run_scenario(nlohmann::json doc, const std::string& file_label,
                       const std::string& base_dir, const RunOptions& options) {
  return run_scenario(
      parse_scenario(std::move(doc), file_label, base_dir, scenario_options(options)), options);
}

RunOutput run_scenario_file(const std::string& path, const RunOptions& options) {
  return run_scenario(parse_scenario_file(path, scenario_options(options)), options);
}

}  // namespace servesim

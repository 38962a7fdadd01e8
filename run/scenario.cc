#include "run/scenario.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "policies/batchers.h"
#include "policies/engine.h"
#include "policies/kv_policies.h"
#include "policies/predictor.h"
#include "policies/router.h"
#include "run/kernel_tables.h"
#include "run/scenario_cluster.h"
#include "run/scenario_file.h"
#include "sim/error.h"
#include "sim/json_reader.h"
#include "traces/workload.h"

namespace servesim {
namespace {

ConfigObject config_of(const JsonValue& v) {
  return ConfigObject{v.raw(), v.pointer()};
}

/// The batcher's configuration: the engine preset's defaults, /policies/batcher over them.
ConfigObject batcher_config(const std::optional<JsonValue>& value, const EnginePreset& engine) {
  ConfigObject c{engine_batcher_defaults(engine), "/policies/batcher"};
  if (value) {
    value->object();  // type check with the right pointer
    for (auto& [k, val] : value->raw().items()) c.json[k] = val;
    c.pointer = value->pointer();
  }
  return c;
}

/// A time in seconds that simulated time (integer nanoseconds) can hold.
Time load_time(const JsonValue& v) {
  return Time::from_s(v.seconds());
}

/// /faults, each naming a replica (or a GPU, meaning the replica that holds it) or a link.
std::vector<FaultSpec> load_faults(const JsonValue& v, const std::vector<InstanceSpec>& instances,
                                   const Cluster& cluster) {
  auto instance_named = [&](const JsonValue& name_value) {
    const std::string name = name_value.as_string();
    for (size_t i = 0; i < instances.size(); ++i)
      if (instances[i].config.name == name) return static_cast<int>(i);
    std::vector<std::string> names;
    for (const auto& spec : instances) names.push_back(spec.config.name);
    name_value.fail(fmt::format("unknown instance '{}'; valid: {}", name, fmt::join(names, ", ")));
  };
  auto instance_of_gpu = [&](const JsonValue& gpu_value) {
    const int gpu = cluster.find_gpu(gpu_value.as_string());
    if (gpu < 0)
      gpu_value.fail(fmt::format("unknown GPU '{}' (write NODE/INDEX)", gpu_value.as_string()));
    for (size_t i = 0; i < instances.size(); ++i)
      for (int g : instances[i].config.gpus)
        if (g == gpu) return static_cast<int>(i);
    gpu_value.fail(fmt::format("GPU '{}' runs no instance", gpu_value.as_string()));
  };
  std::vector<FaultSpec> faults;
  for (const JsonValue& fv : v.array()) {
    JsonObject o = fv.object();
    FaultSpec f;
    const std::string kind =
        o.at("kind").one_of({"instance_failure", "straggler", "link_degradation", "link_failure"});
    if (kind == "link_degradation" || kind == "link_failure") {
      f.kind = kind == "link_failure" ? FaultKind::kLinkFailure : FaultKind::kLinkDegradation;
      const JsonValue link = o.at("link");
      f.target = link.as_string();
      for (const Link& l : cluster.links())
        if (l.name == f.target) f.link = l.id;
      if (f.link < 0) {
        std::vector<std::string> names;
        for (const Link& l : cluster.links())
          if (names.size() < 6) names.push_back(l.name);
        link.fail(
            fmt::format("unknown link '{}'; links are named as the result's links[].name, "
                        "e.g. {}",
                        f.target, fmt::join(names, ", ")));
      }
      if (f.kind == FaultKind::kLinkDegradation) {
        const JsonValue factor = o.at("bandwidth_factor");
        f.factor = factor.positive_double();
        if (f.factor > 1) factor.fail(fmt::format("must be in (0, 1], got {:g}", f.factor));
      }
    } else {
      f.kind = kind == "straggler" ? FaultKind::kStraggler : FaultKind::kInstanceFailure;
      if (o.has("instance") == o.has("gpu")) o.fail("give either 'instance' or 'gpu'");
      f.instance =
          o.maybe("instance") ? instance_named(o.at("instance")) : instance_of_gpu(o.at("gpu"));
      f.target = instances[static_cast<size_t>(f.instance)].config.name;
    }
    if (f.kind == FaultKind::kInstanceFailure || f.kind == FaultKind::kLinkFailure) {
      f.start = load_time(o.at("at_s"));
      if (auto r = o.maybe("recover_after_s"))
        f.end = f.start + Time::from_s(r->positive_seconds());
      if (auto p = o.maybe("requests")) f.reroute = p->one_of({"reroute", "drop"}) == "reroute";
    } else {
      f.start = load_time(o.at("from_s"));
      if (auto u = o.maybe("until_s")) {
        f.end = load_time(*u);
        if (f.end <= f.start) u->fail("must be after from_s");
      }
      if (f.kind == FaultKind::kStraggler) {
        const JsonValue factor = o.at("slowdown");
        f.factor = factor.positive_double();
        if (f.factor < 1)
          factor.fail(fmt::format("must be >= 1 (times slower), got {:g}", f.factor));
      }
    }
    o.finish();
    faults.push_back(std::move(f));
  }
  return faults;
}

}  // namespace

Scenario parse_scenario(nlohmann::json doc, const std::string& file_label,
                        const std::string& base_dir, const ScenarioOptions& options) {
  Scenario s;
  s.file = file_label;
  s.base_dir = base_dir;
  s.doc = std::move(doc);
  apply_overrides(s.doc, options.overrides);
  const auto file = std::make_shared<const std::string>(s.file);
  JsonObject root = JsonValue::root(s.doc, s.file).object();
  s.name = root.get_or("name", std::filesystem::path(s.file).stem().string());
  root.get_or("description", std::string());
  // Any 64-bit unsigned seed, as --seed takes.
  if (auto v = root.maybe("seed"))
    s.seed = v->raw().is_number_unsigned() ? v->raw().get<uint64_t>()
                                           : static_cast<uint64_t>(v->nonnegative_int());
  if (options.seed) s.seed = *options.seed;
  const std::optional<JsonValue> kernel_db_key = root.maybe("kernel_db");

  s.model = load_model(root.at("model"));
  bool kv_given = false;
  if (auto p = root.maybe("precision")) {
    JsonObject po = p->object();
    if (auto w = po.maybe("weights")) s.precision.weights = load_dtype(*w);
    if (auto e = po.maybe("experts")) {
      if (!s.model.moe()) e->fail(fmt::format("model {} has no experts", s.model.name));
      s.precision.experts = load_dtype(*e);
    }
    if (auto k = po.maybe("kv")) {
      s.precision.kv = load_dtype(*k);
      kv_given = true;
    }
    po.finish();
  }
  const EnginePreset engine =
      load_engine(root.maybe("engine"), root.maybe("engine_overrides"), s.doc);
  s.engine = std::string(engine.name);
  s.frontend_latency = Time::from_s(engine.frontend_latency_s);
  // FP8 weights bring FP8 KV in engines that default to it, unless /precision/kv says otherwise.
  if (!kv_given && engine.fp8_kv_with_fp8_weights && s.precision.weights == DType::kFp8)
    s.precision.kv = DType::kFp8;

  auto cluster = load_cluster(root.at("cluster"));
  s.kernel_tables = std::make_shared<const KernelTables>(
      KernelTables::load(kernel_db_key, base_dir, options.kernel_db, *cluster));

  JsonObject policies = root.at("policies").object();
  static const nlohmann::json kEmptyObject = nlohmann::json::object();
  const std::optional<JsonValue> kv_value = policies.maybe("kv");
  JsonObject kv_policy =
      kv_value ? kv_value->object() : JsonValue(&kEmptyObject, "/policies/kv", file).object();
  KvPolicyRegistry kv_policies("KV policy");
  register_builtin_kv_policies(kv_policies);
  KvPolicyConfig kv_config;
  if (auto n = kv_policy.maybe("name"))
    kv_config = *kv_policies.create(n->as_string(), *n, kv_policy);
  if (!kv_policy.maybe("prefix_caching")) kv_config.prefix_caching = engine.prefix_caching;
  kv_config.preempted_kv = engine.preempted_kv;
  kv_policies.allow_all_keys(kv_policy);
  // Every replica gets the same batcher configuration but for the engine's defaults on its GPU
  // (engine_on_gpu); building it once checks it.
  const std::optional<JsonValue> batcher_value = policies.maybe("batcher");
  const ConfigObject batcher = batcher_config(batcher_value, engine);
  {
    BatcherRegistry batchers("batcher");
    register_builtin_batchers(batchers);
    nlohmann::json copy = batcher.json;
    JsonObject bo = JsonValue(&copy, batcher.pointer, file).object();
    const JsonValue name_value = bo.at("name");
    batchers.create(name_value.as_string(), name_value, bo);
    batchers.allow_all_keys(bo);
    bo.finish();
  }
  auto loads = load_instances(root.at("instances"), *cluster, s.model, s.precision, kv_policy,
                              engine, batcher_value ? batcher_value->raw() : kEmptyObject);
  kv_policy.finish();
  // Disaggregated serving: prefill replicas hand each request on to a decode replica.
  std::vector<std::string> names, entry_names, decode_names;
  for (const InstanceLoad& load : loads) {
    (load.config.role == InstanceRole::kDecode ? decode_names : entry_names)
        .push_back(load.config.name);
    s.disaggregated = s.disaggregated || load.config.role != InstanceRole::kMixed;
  }
  if (s.disaggregated) {
    const bool has_prefill = std::any_of(loads.begin(), loads.end(), [](const InstanceLoad& l) {
      return l.config.role == InstanceRole::kPrefill;
    });
    if (!has_prefill)
      root.at("instances").fail("decode replicas need at least one replica with role 'prefill'");
    if (decode_names.empty())
      root.at("instances").fail("prefill replicas need at least one replica with role 'decode'");
    if (kv_config.mode == KvMode::kNoCache)
      root.at("instances")
          .fail("prefill and decode roles hand the KV cache on; the no_kv_cache policy has none");
    if (batcher.json.value("name", "") != "continuous")
      root.at("instances")
          .fail(fmt::format("prefill and decode roles need the continuous batcher, not '{}'",
                            batcher.json.value("name", "")));
    if (root.has("faults"))
      root.at("faults").fail("faults are not supported with prefill and decode roles yet");
  }
  for (const InstanceLoad& load : loads) {
    InstanceSpec spec;
    spec.config = load.config;
    spec.config.kv_policy = kv_config;
    // Offloaded KV goes to the host of the replica's first GPU, over that GPU's PCIe link.
    const int host_node = cluster->gpus()[spec.config.gpus.front()].node;
    spec.config.host_kv_bytes =
        kv_config.host_memory_fraction * cluster->nodes()[host_node].host_memory_bytes;
    spec.cost =
        cost_model_inputs(spec.config, *cluster, s.model, s.precision, kv_config, nullptr, engine);
    spec.cost.kernel_db = s.kernel_tables->for_gpu(spec.cost.gpu, spec.config.name);
    spec.batcher = batcher_config(batcher_value, load.engine);
    names.push_back(spec.config.name);
    s.instances.push_back(std::move(spec));
  }
  s.cluster = std::move(cluster);

  {
    RouterRegistry routers("router");
    register_builtin_routers(routers);
    PredictorRegistry predictors("output-length predictor");
    register_builtin_predictors(predictors);
    JsonObject router_config = policies.at("router").object();
    const JsonValue router_name = router_config.at("name");
    routers.create(router_name.as_string(), router_name, router_config, entry_names);
    if (auto ol = router_config.maybe("output_length"))
      predictors.create(ol->as_string(), *ol, router_config, s.seed);
    routers.allow_all_keys(router_config);
    predictors.allow_all_keys(router_config);
    router_config.finish();
    s.router = config_of(policies.at("router"));
    if (auto d = policies.maybe("decode_router")) {
      if (!s.disaggregated) d->fail("a decode router needs replicas with role 'decode'");
      JsonObject decode_config = d->object();
      const JsonValue name = decode_config.at("name");
      routers.create(name.as_string(), name, decode_config, decode_names);
      routers.allow_all_keys(decode_config);
      decode_config.finish();
      s.decode_router = config_of(*d);
    } else if (s.disaggregated) {
      s.decode_router.json = {{"name", "least_loaded"}};
      s.decode_router.pointer = "/policies/decode_router";
    }
  }
  if (auto p = policies.maybe("preemption")) {
    s.migrate_on_preemption = p->one_of({"recompute", "migrate"}) == "migrate";
    if (s.migrate_on_preemption && s.instances.size() < 2)
      p->fail("migration needs a second replica to move KV to");
    if (s.migrate_on_preemption && root.has("faults"))
      root.at("faults").fail("faults are not supported with KV migration yet");
  }
  if (auto t = policies.maybe("iteration_traffic")) {
    const std::string mode = t->one_of({"auto", "flows", "priced"});
    s.iteration_traffic = mode == "flows"    ? StepTrafficMode::kFlows
                          : mode == "priced" ? StepTrafficMode::kPriced
                                             : StepTrafficMode::kAuto;
    if (s.iteration_traffic == StepTrafficMode::kFlows && root.has("faults"))
      root.at("faults").fail("faults are not supported with iteration traffic on flows yet");
  }
  // A failure or a degraded link would change a step whose flows are in flight: with faults,
  // iteration traffic keeps its per-transfer price.
  if (root.has("faults")) s.iteration_traffic = StepTrafficMode::kPriced;
  policies.finish();

  if (auto f = root.maybe("faults")) s.faults = load_faults(*f, s.instances, *s.cluster);

  JsonObject workload = root.at("workload").object();
  make_workload(workload, base_dir, s.seed);
  s.workload = config_of(root.at("workload"));

  if (auto out = root.maybe("output")) {
    JsonObject oo = out->object();
    s.output.record_requests = oo.get_or("requests", true);
    // At least a microsecond: a finer interval samples more often than anything happens, and
    // one that rounds to 0 ns would never let time advance.
    if (auto si = oo.maybe("sample_interval_s"))
      s.output.sample_interval_s = si->number_in_range(1e-6, 1e9);
    if (auto es = oo.maybe("exact_samples"))
      s.output.exact_samples = static_cast<uint64_t>(es->int_in_range(1, int64_t{1} << 32));
    oo.finish();
  }
  if (auto slo = root.maybe("slo")) {
    JsonObject so = slo->object();
    if (auto t = so.maybe("ttft_ms")) s.slo.ttft_ms = t->positive_double();
    if (auto t = so.maybe("tpot_ms")) s.slo.tpot_ms = t->positive_double();
    if (auto t = so.maybe("e2el_ms")) s.slo.e2el_ms = t->positive_double();
    so.finish();
  }
  root.finish();
  return s;
}

Scenario parse_scenario_file(const std::string& path, const ScenarioOptions& options) {
  nlohmann::json doc = read_json_file(path);
  const std::string base = std::filesystem::path(path).parent_path().string();
  return parse_scenario(std::move(doc), path, base.empty() ? "." : base, options);
}

}  // namespace servesim

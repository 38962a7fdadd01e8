#include "run/run.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <ostream>
#include <unordered_map>

#include "models/cluster.h"
#include "models/cost_model.h"
#include "models/gpu.h"
#include "models/instance.h"
#include "models/kernel_db.h"
#include "models/kernel_fit.h"
#include "models/llm.h"
#include "policies/batchers.h"
#include "policies/engine.h"
#include "policies/kv_policies.h"
#include "policies/predictor.h"
#include "policies/router.h"
#include "run/scenario_file.h"
#include "run/scenario_hash.h"
#include "sim/chunked_array.h"
#include "sim/error.h"
#include "sim/json_reader.h"
#include "sim/latency_samples.h"
#include "sim/simulator.h"
#include "sim/stats.h"
#include "traces/workload.h"

namespace servesim {
namespace {

// ---------------------------------------------------------------------------------------
// Loading: JSON -> plain structs, strictly. Every error names file and JSON pointer.

DType load_dtype(const JsonValue& v) {
  const std::string name = v.as_string();
  auto d = parse_dtype(name);
  if (!d) v.fail(fmt::format("unknown dtype '{}'; valid: {}", name, kDTypeNames));
  return *d;
}

ModelSpec load_model(const JsonValue& v) {
  if (v.is_string()) {
    const std::string name = v.as_string();
    const ModelSpec* m = find_model(name);
    if (!m) {
      std::vector<std::string> names;
      for (const auto& spec : model_catalogue()) names.push_back(spec.name);
      v.fail(fmt::format("unknown model '{}'; valid: {}", name, fmt::join(names, ", ")));
    }
    return *m;
  }
  JsonObject o = v.object();
  ModelSpec m;
  m.name = o.at("name").as_string();
  m.num_layers = o.at("num_layers").positive_int();
  m.hidden_size = o.at("hidden_size").positive_int();
  m.num_heads = o.at("num_heads").positive_int();
  m.num_kv_heads = o.at("num_kv_heads").positive_int();
  m.head_dim = o.maybe("head_dim") ? o.at("head_dim").positive_int() : m.hidden_size / m.num_heads;
  m.ffn_hidden_size = o.at("ffn_hidden_size").positive_int();
  m.vocab_size = o.at("vocab_size").positive_int();
  m.tied_embeddings = o.get_or("tied_embeddings", false);
  m.gated_mlp = o.get_or("gated_mlp", true);
  if (m.num_heads % m.num_kv_heads != 0) o.at("num_kv_heads").fail("must divide num_heads");
  o.finish();
  return m;
}

LinkSpec load_link(const JsonValue& v) {
  JsonObject o = v.object();
  LinkSpec l;
  l.bandwidth_bytes_per_s = o.at("bandwidth_bytes_per_s").positive_double();
  l.latency_s = o.at("latency_s").nonnegative_double();
  o.finish();
  return l;
}

GpuSpec load_gpu_type(const std::string& name, const JsonValue& v) {
  JsonObject o = v.object();
  GpuSpec g;
  g.name = name;
  g.memory_bytes = o.at("memory_bytes").positive_double();
  g.hbm_bandwidth_bytes_per_s = o.at("hbm_bandwidth_bytes_per_s").positive_double();
  g.bf16_flops_per_s = o.at("bf16_flops_per_s").positive_double();
  g.fp8_flops_per_s = o.get_or("fp8_flops_per_s", 0.0);
  g.int8_ops_per_s = o.get_or("int8_ops_per_s", 0.0);
  g.nvlink_bandwidth_bytes_per_s = o.get_or("nvlink_bandwidth_bytes_per_s", 0.0);
  g.pcie_bandwidth_bytes_per_s = o.get_or("pcie_bandwidth_bytes_per_s", 16e9);
  for (const char* key : {"fp8_flops_per_s", "int8_ops_per_s", "nvlink_bandwidth_bytes_per_s",
                          "pcie_bandwidth_bytes_per_s"})
    if (auto x = o.maybe(key)) x->nonnegative_double();
  o.finish();
  return g;
}

std::unique_ptr<Cluster> load_cluster(const JsonValue& v) {
  JsonObject o = v.object();
  std::map<std::string, GpuSpec> custom;
  if (auto types = o.maybe("gpu_types")) {
    JsonObject t = types->object();
    for (const std::string& name : t.keys()) {
      if (find_gpu(name))
        t.at(name).fail(
            fmt::format("GPU type '{}' shadows a catalogue GPU; pick another name", name));
      custom[name] = load_gpu_type(name, t.at(name));
    }
    t.finish();
  }
  auto resolve = [&](const JsonValue& name_value) {
    const std::string name = name_value.as_string();
    if (auto it = custom.find(name); it != custom.end()) return it->second;
    if (const GpuSpec* g = find_gpu(name)) return *g;
    std::vector<std::string> names;
    for (const auto& [n, spec] : custom) names.push_back(n);
    for (const auto& g : gpu_catalogue()) names.push_back(g.name);
    name_value.fail(fmt::format("unknown GPU type '{}'; valid: {}", name, fmt::join(names, ", ")));
  };

  std::vector<NodeSpec> nodes;
  const auto node_values = o.at("nodes").nonempty_array();
  for (const JsonValue& nv : node_values) {
    JsonObject n = nv.object();
    NodeSpec node;
    node.name = n.at("name").as_string();
    for (const NodeSpec& other : nodes)
      if (other.name == node.name)
        n.at("name").fail(fmt::format("duplicate node name '{}'", node.name));
    const JsonValue gpus = n.at("gpus");
    if (gpus.is_object()) {  // {"type": "H100-SXM", "count": 8}
      JsonObject g = gpus.object();
      const GpuSpec spec = resolve(g.at("type"));
      const int64_t count = g.at("count").positive_int();
      g.finish();
      node.gpus.assign(static_cast<size_t>(count), spec);
    } else {
      for (const JsonValue& gv : gpus.nonempty_array()) node.gpus.push_back(resolve(gv));
    }
    node.host_memory_bytes = n.get_or("host_memory_bytes", 0.0);
    if (auto h = n.maybe("host_memory_bytes")) h->nonnegative_double();
    // PCIe defaults to the GPU's own host link (catalogue figure) with a typical 2 us DMA
    // set-up latency; NVLink is present when declared, or when the GPU is an SXM part that
    // ships on an NVLink/NVSwitch board.
    if (auto p = n.maybe("pcie"))
      node.pcie = load_link(*p);
    else
      node.pcie = LinkSpec{node.gpus.front().pcie_bandwidth_bytes_per_s, 2e-6};
    if (auto l = n.maybe("nvlink")) {
      node.has_nvlink = true;
      node.nvlink = load_link(*l);
    } else if (node.gpus.front().nvlink_bandwidth_bytes_per_s > 0 && node.gpus.size() > 1) {
      node.has_nvlink = true;
      node.nvlink = LinkSpec{node.gpus.front().nvlink_bandwidth_bytes_per_s, 2e-6};
    }
    n.finish();
    nodes.push_back(std::move(node));
  }
  LinkSpec network{12.5e9, 5e-6};  // one 100 Gb/s NIC per node (networks.csv, EDR/100GbE)
  if (auto net = o.maybe("network"))
    network = load_link(*net);
  else if (nodes.size() > 1)
    o.fail("missing required key 'network' (needed with more than one node)");
  o.finish();
  return std::make_unique<Cluster>(std::move(nodes), network);
}

struct InstanceLoad {
  InstanceConfig config;
  std::string pointer;
};

std::vector<InstanceLoad> load_instances(const JsonValue& v, const Cluster& cluster,
                                         const ModelSpec& model, const Precision& precision,
                                         JsonObject& kv_policy, const EnginePreset& engine) {
  const int64_t block_tokens = kv_policy.get_or("block_tokens", int64_t{16});
  if (block_tokens <= 0) kv_policy.at("block_tokens").fail("must be > 0");
  const double reserve_fraction = kv_policy.maybe("reserve_fraction")
                                      ? kv_policy.at("reserve_fraction").fraction()
                                      : engine.reserve_fraction;
  const double reserve_bytes = kv_policy.maybe("reserve_bytes")
                                   ? kv_policy.at("reserve_bytes").nonnegative_double()
                                   : engine.reserve_bytes;
  std::vector<InstanceLoad> out;
  std::vector<bool> gpu_used(cluster.gpus().size(), false);
  for (const JsonValue& iv : v.nonempty_array()) {
    JsonObject o = iv.object();
    InstanceLoad load;
    load.pointer = iv.pointer();
    InstanceConfig& c = load.config;
    c.name = o.get_or("name", fmt::format("instance{}", out.size()));
    for (const auto& other : out)
      if (other.config.name == c.name) o.fail(fmt::format("duplicate instance name '{}'", c.name));
    c.tp = static_cast<int>(o.maybe("tp") ? o.at("tp").positive_int() : 1);
    c.pp = static_cast<int>(o.maybe("pp") ? o.at("pp").positive_int() : 1);
    c.block_tokens = block_tokens;
    c.reserve_fraction = reserve_fraction;
    c.reserve_bytes = reserve_bytes;
    c.max_model_len = o.maybe("max_model_len") ? o.at("max_model_len").positive_int() : 0;
    const size_t want = static_cast<size_t>(c.tp * c.pp);
    if (auto gpus = o.maybe("gpus")) {
      if (o.has("node")) o.fail("give either 'gpus' or 'node', not both");
      const auto list = gpus->nonempty_array();
      if (list.size() != want)
        gpus->fail(fmt::format("tp x pp = {} GPUs needed, {} listed", want, list.size()));
      for (const JsonValue& g : list) {
        const int index = cluster.find_gpu(g.as_string());
        if (index < 0) g.fail(fmt::format("unknown GPU '{}' (write NODE/INDEX)", g.as_string()));
        if (gpu_used[index])
          g.fail(fmt::format("GPU '{}' is already used by another instance", g.as_string()));
        gpu_used[index] = true;
        c.gpus.push_back(index);
      }
    } else {
      // "node": take the first tp x pp unused GPUs of that node.
      const JsonValue node_value = o.at("node");
      const int node = cluster.find_node(node_value.as_string());
      if (node < 0) node_value.fail(fmt::format("unknown node '{}'", node_value.as_string()));
      for (size_t g = 0; g < cluster.gpus().size() && c.gpus.size() < want; ++g)
        if (cluster.gpus()[g].node == node && !gpu_used[g]) {
          gpu_used[g] = true;
          c.gpus.push_back(static_cast<int>(g));
        }
      if (c.gpus.size() < want)
        node_value.fail(fmt::format("node '{}' has {} free GPUs, tp x pp = {} needed",
                                    node_value.as_string(), c.gpus.size(), want));
    }
    if (model.num_heads % c.tp != 0)
      o.at("tp").fail(
          fmt::format("tp {} must divide the model's {} attention heads", c.tp, model.num_heads));
    if (c.pp > model.num_layers)
      o.at("pp").fail(fmt::format("pp {} exceeds the model's {} layers", c.pp, model.num_layers));
    const MemoryPlan plan = plan_memory(c, cluster, model, precision);
    if (plan.shortfall_bytes > 0)
      o.fail(fmt::format(
          "model {} does not fit instance '{}': {:.2f} GB weights + {:.2f} GB reserve per GPU "
          "exceed {:.2f} GB by {:.2f} GB",
          model.name, c.name, plan.weight_bytes / 1e9, plan.reserve_bytes / 1e9,
          plan.gpu_memory_bytes / 1e9, plan.shortfall_bytes / 1e9));
    if (plan.kv_blocks < 1)
      o.fail(fmt::format("instance '{}' has no room for a single KV block", c.name));
    o.finish();
    out.push_back(std::move(load));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The run.

class ScenarioRun final : public InstanceObserver {
 public:
  ScenarioRun(nlohmann::json doc, std::string file_label, std::string base_dir,
              const RunOptions& options)
      : doc_(std::move(doc)),
        file_(std::move(file_label)),
        base_dir_(std::move(base_dir)),
        options_(options) {
    load(options);
  }

  RunOutput run();

  // InstanceObserver.
  void on_first_token(const Request& r) override {
    if (counted(r)) ttft_ms_.push_back((r.first_token - r.spec.arrival).to_ms());
  }
  /// A closed-form stretch: the first gap is each request's own, the later ones are shared by
  /// every request of the batch, so they are added once with a count (exact, O(n + steps)).
  void on_decode_stretch(const std::vector<ScheduledItem>& items,
                         const std::vector<int64_t>& step_end_ns) override {
    uint64_t counted_requests = 0;
    for (const ScheduledItem& item : items) {
      if (!counted(*item.request)) continue;
      ++counted_requests;
      itl_.add(Time::from_ns(step_end_ns[0] - item.request->last_token.ns));
    }
    for (size_t j = 1; j < step_end_ns.size(); ++j)
      itl_.add(Time::from_ns(step_end_ns[j] - step_end_ns[j - 1]), counted_requests);
  }
  bool records_tokens_of(const Request& r) const override { return counted(r); }
  void on_decode_steps(uint64_t requests, const StepSeries& steps) override {
    itl_.add_steps(steps, requests);
  }
  void on_token(const Request& r, Time gap) override {
    if (counted(r)) itl_.add(gap);
  }
  void on_finish(Request& r) override;
  void on_drop(Request& r, std::string_view reason) override;

 private:
  void load(const RunOptions& options);
  void submit(const RequestSpec& spec);
  void sample();
  bool counted(const Request& r) const { return static_cast<int64_t>(r.id) >= warmup_; }
  void record_request(const Request& r, std::string_view status, std::string_view reason);
  void release(Request& r);
  void check_conservation();
  nlohmann::ordered_json build_result(const RunOptions& options);
  std::string summary_table(const nlohmann::ordered_json& summary) const;

  nlohmann::json doc_;
  std::string file_;
  std::string base_dir_;
  RunOptions options_;
  uint64_t seed_ = 0;
  std::string scenario_name_;
  ModelSpec model_;
  Precision precision_;
  std::string engine_name_;
  /// Measured kernel tables (/kernel_db, --kernel-db), shared by every replica's cost model;
  /// declared before instances_ so it outlives them.
  std::shared_ptr<const KernelDb> kernel_db_;
  std::unique_ptr<Cluster> cluster_;
  Simulator sim_;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::vector<Instance*> instance_ptrs_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<OutputPredictor> predictor_;
  std::unique_ptr<Workload> workload_;
  int64_t warmup_ = 0;
  bool record_requests_ = true;
  double sample_interval_s_ = 1.0;
  double slo_ttft_ms_ = 0, slo_tpot_ms_ = 0;

  /// Requests in flight live in a pool whose slots are reused once a request is released:
  /// memory follows the peak number in flight, and nothing is looked up by id.
  ChunkedArray<Request> request_pool_;
  std::vector<Request*> free_requests_;
  uint64_t in_flight_ = 0;
  uint64_t next_id_ = 0;
  uint64_t arrived_ = 0, completed_ = 0, dropped_ = 0, truncated_ = 0, good_ = 0;
  int64_t input_tokens_ = 0, output_tokens_ = 0;
  Time first_arrival_ = Time::max(), last_finish_;
  // One double per counted request each (8 MB per million requests per metric): exact
  // percentiles. Inter-token gaps are per token, so they are stored run-length encoded
  // (tools/latency_samples.h): one pair per decode iteration, still exact.
  std::vector<double> ttft_ms_, tpot_ms_, e2el_ms_, queue_ms_;
  RunLengthSamples itl_;
  nlohmann::ordered_json requests_ = nlohmann::ordered_json::array();
  std::map<std::string, uint64_t> drops_by_instance_;

  struct Series {
    std::vector<double> kv_used_fraction;
    std::vector<int64_t> waiting, running;
    std::vector<uint64_t> preemptions;  ///< cumulative
  };
  /// E2E latencies of requests finished since the last sample (windowed p99 over time).
  std::vector<double> window_e2el_ms_, p99_e2el_ms_by_window_;
  std::vector<double> misrouted_e2el_ms_;
  uint64_t misrouted_preemptions_ = 0;
  std::vector<double> sample_times_s_;
  std::vector<Series> series_;
};

void ScenarioRun::load(const RunOptions& options) {
  apply_overrides(doc_, options.overrides);
  JsonObject root = JsonValue::root(doc_, file_).object();
  scenario_name_ = root.get_or("name", std::filesystem::path(file_).stem().string());
  root.get_or("description", std::string());
  if (auto s = root.maybe("seed")) seed_ = static_cast<uint64_t>(s->nonnegative_int());
  if (options.seed) seed_ = *options.seed;
  // Measured kernel tables instead of the fitted forms; --kernel-db wins over /kernel_db.
  if (auto k = root.maybe("kernel_db"); k && options.kernel_db.empty()) {
    try {
      kernel_db_ = KernelDb::load_shared(std::filesystem::path(base_dir_) / k->as_string());
    } catch (const InputError& e) {
      k->fail(e.what());
    }
  }
  if (!options.kernel_db.empty()) {
    try {
      kernel_db_ = KernelDb::load_shared(options.kernel_db);
    } catch (const InputError& e) {
      throw InputError(fmt::format("--kernel-db: {}", e.what()));
    }
  }

  model_ = load_model(root.at("model"));
  bool kv_given = false;
  if (auto p = root.maybe("precision")) {
    JsonObject po = p->object();
    if (auto w = po.maybe("weights")) precision_.weights = load_dtype(*w);
    if (auto k = po.maybe("kv")) {
      precision_.kv = load_dtype(*k);
      kv_given = true;
    }
    po.finish();
  }
  const EnginePreset engine =
      load_engine(root.maybe("engine"), root.maybe("engine_overrides"), doc_);
  engine_name_ = std::string(engine.name);
  if (!kv_given && engine.fp8_kv_with_fp8_weights && precision_.weights == DType::kFp8)
    precision_.kv = DType::kFp8;

  cluster_ = load_cluster(root.at("cluster"));

  JsonObject policies = root.at("policies").object();
  static const nlohmann::json kEmptyObject = nlohmann::json::object();
  const std::optional<JsonValue> kv_value = policies.maybe("kv");
  JsonObject kv_policy = kv_value ? kv_value->object()
                                  : JsonValue(&kEmptyObject, "/policies/kv",
                                              std::make_shared<const std::string>(file_))
                                        .object();
  KvPolicyRegistry kv_policies("KV policy");
  register_builtin_kv_policies(kv_policies);
  KvPolicyConfig kv_config;
  if (auto n = kv_policy.maybe("name"))
    kv_config = *kv_policies.create(n->as_string(), *n, kv_policy);
  if (!kv_policy.maybe("prefix_caching")) kv_config.prefix_caching = engine.prefix_caching;
  kv_policies.allow_all_keys(kv_policy);

  auto instance_loads =
      load_instances(root.at("instances"), *cluster_, model_, precision_, kv_policy, engine);
  for (auto& l : instance_loads) l.config.closed_form_decode = !options.exact_steps;
  kv_policy.finish();

  BatcherRegistry batchers("batcher");
  register_builtin_batchers(batchers);
  nlohmann::json batcher_default = engine_batcher_defaults(engine);
  std::optional<JsonValue> batcher_value = policies.maybe("batcher");
  nlohmann::json batcher_doc = batcher_default;
  if (batcher_value) {
    batcher_value->object();  // type check with the right pointer
    for (auto& [k, val] : batcher_value->raw().items()) batcher_doc[k] = val;
  }
  const std::string batcher_pointer =
      batcher_value ? batcher_value->pointer() : "/policies/batcher";

  std::vector<std::string> names;
  for (const auto& l : instance_loads) names.push_back(l.config.name);
  for (size_t i = 0; i < instance_loads.size(); ++i) {
    InstanceConfig config = instance_loads[i].config;
    config.kv_policy = kv_config;
    // Offloaded KV goes to the host of the replica's first GPU, over that GPU's PCIe link.
    const int host_node = cluster_->gpus()[config.gpus.front()].node;
    config.host_kv_bytes =
        kv_config.host_memory_fraction * cluster_->nodes()[host_node].host_memory_bytes;
    CostModelConfig cost;
    cost.no_kv_cache = kv_config.mode == KvMode::kNoCache;
    cost.offload_fetch = kv_config.fetch;
    cost.host_path = cluster_->host_path(config.gpus.front());
    cost.gpu = cluster_->gpus()[config.gpus.front()].spec;
    for (int g : config.gpus)  // a mixed replica runs at its slowest GPU's pace
      if (cluster_->gpus()[g].spec.bf16_flops_per_s < cost.gpu.bf16_flops_per_s)
        cost.gpu = cluster_->gpus()[g].spec;
    cost.fit = find_kernel_fit(cost.gpu.name);
    cost.kernel_db = kernel_db_.get();
    cost.model = model_;
    cost.precision = precision_;
    cost.tp = config.tp;
    cost.pp = config.pp;
    apply_engine_costs(engine, cost);
    // The slowest hop of each TP ring and of the PP chain sets the pace.
    cost.tp_on_nvlink = config.tp > 1;
    for (int s = 0; s < config.pp; ++s)
      for (int t = 0; t < config.tp && config.tp > 1; ++t) {
        const int a = config.gpus[static_cast<size_t>(s * config.tp + t)];
        const int b = config.gpus[static_cast<size_t>(s * config.tp + (t + 1) % config.tp)];
        const Path p = cluster_->gpu_path(a, b);
        const bool nvlink =
            p.link_ids.size() == 1 && cluster_->links()[p.link_ids[0]].kind == LinkKind::kNvlink;
        cost.tp_on_nvlink = cost.tp_on_nvlink && nvlink;
        if (cost.tp_path.link_ids.empty() ||
            p.transfer_time_s(1 << 20) > cost.tp_path.transfer_time_s(1 << 20))
          cost.tp_path = p;
      }
    for (int s = 0; s + 1 < config.pp; ++s) {
      const Path p = cluster_->gpu_path(config.gpus[static_cast<size_t>(s * config.tp)],
                                        config.gpus[static_cast<size_t>((s + 1) * config.tp)]);
      if (cost.pp_path.link_ids.empty() ||
          p.transfer_time_s(1 << 20) > cost.pp_path.transfer_time_s(1 << 20))
        cost.pp_path = p;
    }
    nlohmann::json batcher_copy = batcher_doc;
    JsonObject bo =
        JsonValue(&batcher_copy, batcher_pointer, std::make_shared<const std::string>(file_))
            .object();
    const JsonValue name_value = bo.at("name");
    auto batcher = batchers.create(name_value.as_string(), name_value, bo);
    batchers.allow_all_keys(bo);
    bo.finish();
    instances_.push_back(std::make_unique<Instance>(static_cast<int>(i), config, cost, *cluster_,
                                                    sim_, std::move(batcher), *this));
    instance_ptrs_.push_back(instances_.back().get());
  }

  RouterRegistry routers("router");
  register_builtin_routers(routers);
  PredictorRegistry predictors("output-length predictor");
  register_builtin_predictors(predictors);
  JsonObject router_config = policies.at("router").object();
  const JsonValue router_name = router_config.at("name");
  router_ = routers.create(router_name.as_string(), router_name, router_config, names);
  if (auto ol = router_config.maybe("output_length"))
    predictor_ = predictors.create(ol->as_string(), *ol, router_config, seed_);
  else
    predictor_ = std::make_unique<OraclePredictor>();
  routers.allow_all_keys(router_config);
  predictors.allow_all_keys(router_config);
  router_config.finish();
  policies.finish();

  JsonObject workload = root.at("workload").object();
  workload_ = make_workload(workload, base_dir_, seed_);
  warmup_ = workload_->warmup_requests();

  if (auto out = root.maybe("output")) {
    JsonObject oo = out->object();
    record_requests_ = oo.get_or("requests", true);
    if (auto si = oo.maybe("sample_interval_s")) sample_interval_s_ = si->positive_double();
    oo.finish();
  }
  if (auto slo = root.maybe("slo")) {
    JsonObject so = slo->object();
    if (auto t = so.maybe("ttft_ms")) slo_ttft_ms_ = t->positive_double();
    if (auto t = so.maybe("tpot_ms")) slo_tpot_ms_ = t->positive_double();
    so.finish();
  }
  root.finish();
  series_.resize(instances_.size());
}

void ScenarioRun::submit(const RequestSpec& spec) {
  Request* r = nullptr;
  if (free_requests_.empty()) {
    r = &request_pool_.emplace_back();
  } else {
    r = free_requests_.back();
    free_requests_.pop_back();
  }
  r->id = next_id_++;
  r->spec = spec;
  r->predicted_output_tokens = predictor_->predict(spec);
  ++in_flight_;
  ++arrived_;
  if (first_arrival_ == Time::max()) first_arrival_ = spec.arrival;
  const int target = router_->route(*r, instance_ptrs_);
  if (const auto* sc = dynamic_cast<const SizeClassRouter*>(router_.get()))
    r->misrouted = sc->classify(r->spec.prompt_tokens + r->predicted_output_tokens) !=
                   sc->classify(r->spec.prompt_tokens + r->spec.output_tokens);
  SERVESIM_CHECK(target >= 0 && target < static_cast<int>(instances_.size()),
                 "router chose instance {}", target);
  instances_[target]->enqueue(r);
}

void ScenarioRun::record_request(const Request& r, std::string_view status,
                                 std::string_view reason) {
  if (!record_requests_ && !options_.requests_out) return;
  nlohmann::ordered_json j;
  j["id"] = r.id;
  j["status"] = status;
  j["instance"] = r.instance >= 0 ? instances_[r.instance]->name() : "";
  j["arrival_s"] = r.spec.arrival.to_s();
  j["prompt_tokens"] = r.spec.prompt_tokens;
  j["output_tokens"] = r.spec.output_tokens;
  j["predicted_output_tokens"] = r.predicted_output_tokens;
  j["generated_tokens"] = r.generated_tokens;
  j["preemptions"] = r.preemptions;
  if (r.first_token != Time::max()) {
    j["first_token_s"] = r.first_token.to_s();
    j["ttft_ms"] = (r.first_token - r.spec.arrival).to_ms();
  }
  if (r.finished != Time::max()) {
    j["finish_s"] = r.finished.to_s();
    j["e2el_ms"] = (r.finished - r.spec.arrival).to_ms();
  }
  if (r.truncated) j["truncated"] = true;
  if (r.spec.session_id >= 0) j["session"] = r.spec.session_id;
  if (!reason.empty()) j["reason"] = reason;
  if (options_.requests_out) {
    *options_.requests_out << j.dump() << '\n';  // streamed: nothing kept per request
    return;
  }
  requests_.push_back(std::move(j));
}

void ScenarioRun::release(Request& r) {
  const int64_t client = r.spec.client_id;
  r = Request{};  // the slot is free for the next arrival
  free_requests_.push_back(&r);
  --in_flight_;
  workload_->on_request_done(sim_, client);
}

void ScenarioRun::on_finish(Request& r) {
  ++completed_;
  last_finish_ = std::max(last_finish_, r.finished);
  if (r.truncated) ++truncated_;
  if (counted(r)) {
    input_tokens_ += r.spec.prompt_tokens;
    output_tokens_ += r.generated_tokens;
    const double e2el = (r.finished - r.spec.arrival).to_ms();
    const double ttft = (r.first_token - r.spec.arrival).to_ms();
    e2el_ms_.push_back(e2el);
    queue_ms_.push_back((r.first_scheduled - r.spec.arrival).to_ms());
    window_e2el_ms_.push_back(e2el);
    if (r.misrouted) {
      misrouted_e2el_ms_.push_back(e2el);
      misrouted_preemptions_ += static_cast<uint64_t>(r.preemptions);
    }
    double tpot = 0;
    if (r.generated_tokens > 1) {
      tpot = (e2el - ttft) / static_cast<double>(r.generated_tokens - 1);
      tpot_ms_.push_back(tpot);
    }
    const bool good =
        (slo_ttft_ms_ <= 0 || ttft <= slo_ttft_ms_) && (slo_tpot_ms_ <= 0 || tpot <= slo_tpot_ms_);
    if (good) ++good_;
  }
  record_request(r, "finished", "");
  release(r);
}

void ScenarioRun::on_drop(Request& r, std::string_view reason) {
  ++dropped_;
  r.state = RequestState::kDropped;
  ++drops_by_instance_[instances_[r.instance]->name()];
  record_request(r, "dropped", reason);
  release(r);
}

void ScenarioRun::sample() {
  sample_times_s_.push_back(sim_.now().to_s());
  if (options_.on_progress)
    options_.on_progress({sim_.now().to_s(), arrived_, completed_, dropped_});
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
  // Keep sampling while anything else is still to happen.
  if (sim_.pending_events() > 0)
    sim_.schedule_in(Time::from_s(sample_interval_s_), Phase::kSample, [this] { sample(); });
}

void ScenarioRun::check_conservation() {
  SERVESIM_CHECK(arrived_ == completed_ + dropped_,
                 "requests not conserved: {} arrived, {} completed, {} dropped", arrived_,
                 completed_, dropped_);
  SERVESIM_CHECK(in_flight_ == 0, "{} requests still in flight at the end", in_flight_);
  for (const auto& inst : instances_) {
    const auto& pool = inst->kv_pool();
    SERVESIM_CHECK(inst->idle(), "instance {} still has work at the end", inst->name());
    // Only the prefix cache may still hold blocks, and offloaded KV must all have come home.
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
    SERVESIM_CHECK(pool.peak_blocks() <= pool.total_blocks(),
                   "instance {} peaked at {} KV blocks of {}", inst->name(), pool.peak_blocks(),
                   pool.total_blocks());
  }
}

nlohmann::ordered_json ScenarioRun::build_result(const RunOptions& options) {
  nlohmann::ordered_json result;
  const Time end = sim_.now();
  const double duration_s = first_arrival_ == Time::max()
                                ? 0.0
                                : (std::max(last_finish_, first_arrival_) - first_arrival_).to_s();

  auto& meta = result["servesim"];
  meta["version"] = SERVESIM_VERSION;
  meta["scenario"] = scenario_name_;
  meta["seed"] = seed_;
  meta["command_line"] = options.command_line;
  meta["engine"] = engine_name_;
  meta["model"] = model_.name;
  meta["scenario_hash"] = scenario_hash(doc_);  // doc_ holds the scenario after --set

  auto& s = result["summary"];
  s["completed"] = completed_;
  s["dropped"] = dropped_;
  s["arrived"] = arrived_;
  s["truncated"] = truncated_;
  s["duration_s"] = duration_s;
  s["total_input_tokens"] = input_tokens_;
  s["total_output_tokens"] = output_tokens_;
  const double counted_completed = static_cast<double>(e2el_ms_.size());
  s["request_throughput"] = duration_s > 0 ? counted_completed / duration_s : 0.0;
  s["output_throughput"] = duration_s > 0 ? static_cast<double>(output_tokens_) / duration_s : 0.0;
  s["total_token_throughput"] =
      duration_s > 0 ? static_cast<double>(input_tokens_ + output_tokens_) / duration_s : 0.0;
  if (slo_ttft_ms_ > 0 || slo_tpot_ms_ > 0)
    s["request_goodput"] = duration_s > 0 ? static_cast<double>(good_) / duration_s : 0.0;
  add_latency_summary(s, "ttft_ms", ttft_ms_);
  add_latency_summary(s, "tpot_ms", tpot_ms_);
  add_latency_summary(s, "itl_ms", itl_);
  add_latency_summary(s, "e2el_ms", e2el_ms_);
  add_latency_summary(s, "queue_ms", queue_ms_);
  uint64_t preemptions = 0;
  for (const auto& inst : instances_) preemptions += inst->preemptions();
  s["preemptions"] = preemptions;
  int64_t prefill_tokens = 0, prefix_hit_tokens = 0;
  for (const auto& inst : instances_) {
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
  if (dynamic_cast<const SizeClassRouter*>(router_.get())) {
    // Requests whose predicted class differs from their true class, and what they cost.
    s["misroutes"] = misrouted_e2el_ms_.size();
    s["misrouted_preemptions"] = misrouted_preemptions_;
    add_latency_summary(s, "e2el_ms_misrouted", misrouted_e2el_ms_);
  }
  s["warmup_requests_discarded"] = std::min<int64_t>(warmup_, static_cast<int64_t>(arrived_));

  const double makespan_s = end.to_s();
  auto& instances = result["instances"] = nlohmann::ordered_json::array();
  auto& gpus = result["gpus"] = nlohmann::ordered_json::array();
  std::vector<double> link_bytes(cluster_->links().size(), 0.0);
  for (const auto& inst : instances_) {
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
    j["tp"] = c.tp;
    j["pp"] = c.pp;
    std::vector<std::string> gpu_names;
    for (int g : c.gpus) gpu_names.push_back(cluster_->gpus()[g].name);
    j["gpus"] = gpu_names;
    j["requests"] = inst->requests_seen();
    j["iterations"] = inst->iterations();
    j["preemptions"] = inst->preemptions();
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
    instances.push_back(std::move(j));
    for (int g : c.gpus) {
      nlohmann::ordered_json gj;
      gj["name"] = cluster_->gpus()[g].name;
      gj["type"] = cluster_->gpus()[g].spec.name;
      gj["instance"] = c.name;
      gj["busy_fraction"] = busy;
      gj["memory_bytes"] = cluster_->gpus()[g].spec.memory_bytes;
      gj["peak_memory_bytes"] = m.weight_bytes + m.reserve_bytes + peak_kv_bytes;
      gpus.push_back(std::move(gj));
    }
    // Each TP rank sends to its ring neighbour; each PP stage's ranks send their shard on.
    for (int st = 0; st < c.pp; ++st) {
      for (int t = 0; t < c.tp && c.tp > 1; ++t) {
        const Path p = cluster_->gpu_path(c.gpus[static_cast<size_t>(st * c.tp + t)],
                                          c.gpus[static_cast<size_t>(st * c.tp + (t + 1) % c.tp)]);
        for (int l : p.link_ids) link_bytes[l] += inst->tp_bytes_per_gpu();
      }
      if (st + 1 < c.pp)
        for (int t = 0; t < c.tp; ++t) {
          const Path p = cluster_->gpu_path(c.gpus[static_cast<size_t>(st * c.tp + t)],
                                            c.gpus[static_cast<size_t>((st + 1) * c.tp + t)]);
          for (int l : p.link_ids) link_bytes[l] += inst->pp_bytes_per_hop() / c.tp;
        }
    }
    // KV offload: each GPU's writes to and reads from host memory cross its own PCIe link.
    for (int g : c.gpus)
      for (int l : cluster_->host_path(g).link_ids)
        link_bytes[l] +=
            inst->priced_gpu_to_host_bytes_per_gpu() + inst->priced_host_to_gpu_bytes_per_gpu();
  }
  auto& links = result["links"] = nlohmann::ordered_json::array();
  for (const Link& l : cluster_->links()) {
    if (link_bytes[l.id] <= 0) continue;
    links.push_back(
        {{"name", l.name},
         {"kind", link_kind_name(l.kind)},
         {"bandwidth_bytes_per_s", l.spec.bandwidth_bytes_per_s},
         {"bytes", link_bytes[l.id]},
         {"busy_fraction",
          makespan_s > 0 ? link_bytes[l.id] / l.spec.bandwidth_bytes_per_s / makespan_s : 0.0}});
  }

  auto& ts = result["timeseries"];
  ts["sample_interval_s"] = sample_interval_s_;
  ts["time_s"] = sample_times_s_;
  auto& per = ts["instances"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < instances_.size(); ++i)
    per.push_back({{"name", instances_[i]->name()},
                   {"kv_used_fraction", series_[i].kv_used_fraction},
                   {"waiting", series_[i].waiting},
                   {"running", series_[i].running},
                   {"preemptions", series_[i].preemptions}});
  ts["p99_e2el_ms"] = p99_e2el_ms_by_window_;
  if (!drops_by_instance_.empty()) result["drops_by_instance"] = drops_by_instance_;
  if (record_requests_ && !options_.requests_out) result["requests"] = std::move(requests_);
  return result;
}

std::string ScenarioRun::summary_table(const nlohmann::ordered_json& s) const {
  std::string out = fmt::format("{:=^60}\n", fmt::format(" {} ", scenario_name_));
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
  row("Output token throughput (tok/s):", s["output_throughput"], 2);
  row("Preemptions:", s["preemptions"], 0);
  for (const auto& [label, key] : std::initializer_list<std::pair<const char*, const char*>>{
           {"Time to First Token", "ttft_ms"},
           {"Time per Output Token (excl. 1st token)", "tpot_ms"},
           {"Inter-token Latency", "itl_ms"},
           {"End-to-end Latency", "e2el_ms"}}) {
    out += fmt::format("{:-^60}\n", fmt::format("{}", label));
    row(fmt::format("Mean {} (ms):", key), s[std::string("mean_") + key], 2);
    row(fmt::format("Median {} (ms):", key), s[std::string("median_") + key], 2);
    row(fmt::format("P99 {} (ms):", key), s[std::string("p99_") + key], 2);
  }
  out += fmt::format("{:=^60}\n", "");
  return out;
}

RunOutput ScenarioRun::run() {
  workload_->start(sim_, [this](const RequestSpec& spec) { submit(spec); });
  sim_.schedule_at(Time{}, Phase::kSample, [this] { sample(); });
  sim_.run();
  check_conservation();
  RunOutput out;
  out.events = sim_.events_processed();
  out.simulated_s = sim_.now().to_s();
  out.result = build_result(options_);
  out.summary_table = summary_table(out.result["summary"]);
  return out;
}

}  // namespace

RunOutput run_scenario(nlohmann::json doc, const std::string& file_label,
                       const std::string& base_dir, const RunOptions& options) {
  ScenarioRun run(std::move(doc), file_label, base_dir, options);
  return run.run();
}

RunOutput run_scenario_file(const std::string& path, const RunOptions& options) {
  nlohmann::json doc = read_json_file(path);
  const std::string base = std::filesystem::path(path).parent_path().string();
  return run_scenario(std::move(doc), path, base.empty() ? "." : base, options);
}

std::string describe_policies() {
  std::string out;
  RouterRegistry routers("router");
  register_builtin_routers(routers);
  BatcherRegistry batchers("batcher");
  register_builtin_batchers(batchers);
  PredictorRegistry predictors("output-length predictor");
  register_builtin_predictors(predictors);
  auto section = [&](const auto& registry, std::string_view pointer) {
    out += fmt::format("{}s ({}):\n", registry.kind(), pointer);
    for (const auto& name : registry.names())
      out += fmt::format("  {:<14} {}\n", name, registry.description(name));
  };
  section(routers, "/policies/router/name");
  section(batchers, "/policies/batcher/name");
  section(predictors, "/policies/router/output_length");
  KvPolicyRegistry kv_policies("KV policy");
  register_builtin_kv_policies(kv_policies);
  section(kv_policies, "/policies/kv/name");
  out += "engines (/engine):\n";
  for (const auto& e : engine_presets())
    out += fmt::format("  {:<14} {:.2f} ms per-iteration overhead; {}\n", e.name,
                       e.iteration_overhead_s * 1e3, e.source);
  return out;
}

}  // namespace servesim

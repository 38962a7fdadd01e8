#include "run/scenario_cluster.h"

#include <fmt/format.h>

#include <map>

#include "models/gpu.h"
#include "models/kernel_fit.h"
#include "sim/error.h"

namespace servesim {

namespace {

// Plausible hardware ranges: far beyond any real part either way, yet narrow enough that every
// time, byte and block count derived from them stays finite and fits its integer type (an
// iteration on the slowest GPU still lasts less than simulated time can hold).
constexpr double kMinBandwidth_bytes_per_s = 1e3, kMaxBandwidth_bytes_per_s = 1e16;
constexpr double kMinFlops_per_s = 1e9, kMaxFlops_per_s = 1e19;
constexpr double kMinMemory_bytes = 1e6, kMaxMemory_bytes = 1e15;
constexpr double kMaxLatency_s = 10;
constexpr int64_t kMaxGpusPerNode = 4096;
constexpr int64_t kMaxParallelism = 4096;

LinkSpec load_link(const JsonValue& v) {
  JsonObject o = v.object();
  LinkSpec l;
  l.bandwidth_bytes_per_s =
      o.at("bandwidth_bytes_per_s")
          .number_in_range(kMinBandwidth_bytes_per_s, kMaxBandwidth_bytes_per_s);
  l.latency_s = o.at("latency_s").number_in_range(0, kMaxLatency_s);
  o.finish();
  return l;
}

GpuSpec load_gpu_type(const std::string& name, const JsonValue& v) {
  JsonObject o = v.object();
  GpuSpec g;
  g.name = name;
  g.memory_bytes = o.at("memory_bytes").number_in_range(kMinMemory_bytes, kMaxMemory_bytes);
  g.hbm_bandwidth_bytes_per_s =
      o.at("hbm_bandwidth_bytes_per_s")
          .number_in_range(kMinBandwidth_bytes_per_s, kMaxBandwidth_bytes_per_s);
  g.bf16_flops_per_s = o.at("bf16_flops_per_s").number_in_range(kMinFlops_per_s, kMaxFlops_per_s);
  g.fp8_flops_per_s = o.get_or("fp8_flops_per_s", 0.0);
  g.int8_ops_per_s = o.get_or("int8_ops_per_s", 0.0);
  g.nvlink_bandwidth_bytes_per_s = o.get_or("nvlink_bandwidth_bytes_per_s", 0.0);
  g.pcie_bandwidth_bytes_per_s = o.get_or("pcie_bandwidth_bytes_per_s", 16e9);
  // Optional: without it the GPU's power and energy are not reported.
  if (auto x = o.maybe("tdp_w")) g.tdp_w = x->number_in_range(1, 1e5);
  // 0 means "none" (no FP8 units, no NVLink); otherwise the same plausible ranges.
  for (const char* key : {"fp8_flops_per_s", "int8_ops_per_s"})
    if (auto x = o.maybe(key); x && x->nonnegative_double() > 0)
      x->number_in_range(kMinFlops_per_s, kMaxFlops_per_s);
  for (const char* key : {"nvlink_bandwidth_bytes_per_s", "pcie_bandwidth_bytes_per_s"})
    if (auto x = o.maybe(key); x && x->nonnegative_double() > 0)
      x->number_in_range(kMinBandwidth_bytes_per_s, kMaxBandwidth_bytes_per_s);
  o.finish();
  return g;
}

/// An instance's "ep", "attention_dp" and "expert_load" (MoE models only).
void load_moe_layout(JsonObject& o, const ModelSpec& model, InstanceConfig& c) {
  if (!model.moe()) {
    for (const char* key : {"ep", "attention_dp", "expert_load"})
      if (o.has(key))
        o.at(key).fail(
            fmt::format("model {} has no experts (a dense model: more replicas give attention DP)",
                        model.name));
  }
  if (auto v = o.maybe("ep")) {
    c.moe.ep = static_cast<int>(v->int_in_range(1, kMaxParallelism));
    if (c.tp % c.moe.ep != 0)
      v->fail(
          fmt::format("ep {} must divide tp {} (the replica's GPUs per stage)", c.moe.ep, c.tp));
    if (model.num_experts % c.moe.ep != 0)
      v->fail(fmt::format("ep {} must divide the model's {} experts", c.moe.ep, model.num_experts));
  }
  if (auto v = o.maybe("attention_dp")) {
    c.moe.attention_dp = static_cast<int>(v->int_in_range(1, kMaxParallelism));
    if (c.tp % c.moe.attention_dp != 0)
      v->fail(fmt::format("attention_dp {} must divide tp {}", c.moe.attention_dp, c.tp));
  }
  if (auto v = o.maybe("expert_load")) {
    JsonObject e = v->object();
    const std::string kind = e.at("kind").one_of({"uniform", "zipf", "measured"});
    if (kind == "zipf") {
      c.expert_load.kind = ExpertSkew::Kind::kZipf;
      c.expert_load.zipf_exponent = e.at("exponent").number_in_range(0, 10);
    } else if (kind == "measured") {
      c.expert_load.kind = ExpertSkew::Kind::kMeasured;
      const JsonValue loads = e.at("loads");
      double total = 0;
      for (const JsonValue& x : loads.nonempty_array()) {
        c.expert_load.loads.push_back(x.nonnegative_double());
        total += c.expert_load.loads.back();
      }
      if (static_cast<int64_t>(c.expert_load.loads.size()) != model.num_experts)
        loads.fail(fmt::format("{} loads given, the model has {} experts",
                               c.expert_load.loads.size(), model.num_experts));
      if (total <= 0) loads.fail("every load is 0");
    }
    e.finish();
  }
}

}  // namespace

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
  // Bounds far above any published model, low enough that parameter and KV counts (products
  // of these) stay exact in 64-bit integers.
  m.num_layers = o.at("num_layers").int_in_range(1, 1 << 12);
  m.hidden_size = o.at("hidden_size").int_in_range(1, 1 << 20);
  m.num_heads = o.at("num_heads").int_in_range(1, 1 << 16);
  m.num_kv_heads = o.at("num_kv_heads").int_in_range(1, 1 << 16);
  m.head_dim =
      o.maybe("head_dim") ? o.at("head_dim").int_in_range(1, 1 << 16) : m.hidden_size / m.num_heads;
  if (m.head_dim < 1) o.at("num_heads").fail("exceeds hidden_size (no head_dim given)");
  m.ffn_hidden_size = o.at("ffn_hidden_size").int_in_range(1, 1 << 20);
  m.vocab_size = o.at("vocab_size").int_in_range(1, 1 << 24);
  m.tied_embeddings = o.get_or("tied_embeddings", false);
  m.gated_mlp = o.get_or("gated_mlp", true);
  if (m.num_heads % m.num_kv_heads != 0) o.at("num_kv_heads").fail("must divide num_heads");
  // Mixture of experts: num_experts and experts_per_token together, the rest optional.
  if (o.has("num_experts") || o.has("experts_per_token")) {
    m.num_experts = o.at("num_experts").int_in_range(2, 1 << 16);
    m.experts_per_token = o.at("experts_per_token").int_in_range(1, m.num_experts);
    m.expert_ffn_hidden_size = o.maybe("expert_ffn_hidden_size")
                                   ? o.at("expert_ffn_hidden_size").int_in_range(1, 1 << 20)
                                   : m.ffn_hidden_size;
    m.shared_experts = o.get_or("shared_experts", int64_t{0});
    if (m.shared_experts < 0 || m.shared_experts > m.num_experts)
      o.at("shared_experts").fail(fmt::format("must be in [0, {}]", m.num_experts));
    m.dense_layers = o.get_or("dense_layers", int64_t{0});
    if (m.dense_layers < 0 || m.dense_layers >= m.num_layers)
      o.at("dense_layers").fail(fmt::format("must be in [0, {}) (num_layers)", m.num_layers));
  } else {
    for (const char* key : {"expert_ffn_hidden_size", "shared_experts", "dense_layers"})
      if (o.has(key))
        o.at(key).fail("is an MoE setting: give num_experts and experts_per_token with it");
  }
  // Multi-head latent attention: kv_lora_rank, qk_rope_head_dim and v_head_dim together.
  if (o.has("kv_lora_rank") || o.has("qk_rope_head_dim") || o.has("v_head_dim") ||
      o.has("q_lora_rank")) {
    m.kv_lora_rank = o.at("kv_lora_rank").int_in_range(1, 1 << 16);
    m.qk_rope_head_dim = o.at("qk_rope_head_dim").int_in_range(1, 1 << 16);
    m.v_head_dim = o.at("v_head_dim").int_in_range(1, 1 << 16);
    m.q_lora_rank = o.maybe("q_lora_rank") ? o.at("q_lora_rank").int_in_range(1, 1 << 20) : 0;
    if (!o.has("head_dim")) o.at("kv_lora_rank").fail("MLA needs head_dim (qk_nope_head_dim)");
  }
  o.finish();
  return m;
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
      const int64_t count = g.at("count").int_in_range(1, kMaxGpusPerNode);
      g.finish();
      node.gpus.assign(static_cast<size_t>(count), spec);
    } else {
      for (const JsonValue& gv : gpus.nonempty_array()) node.gpus.push_back(resolve(gv));
    }
    node.host_memory_bytes = n.get_or("host_memory_bytes", 0.0);
    if (auto h = n.maybe("host_memory_bytes")) h->number_in_range(0, kMaxMemory_bytes * 1e3);
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

std::vector<InstanceLoad> load_instances(const JsonValue& v, const Cluster& cluster,
                                         const ModelSpec& model, const Precision& precision,
                                         JsonObject& kv_policy, const EnginePreset& engine,
                                         const nlohmann::json& batcher_given) {
  const int64_t block_tokens =
      kv_policy.maybe("block_tokens") ? kv_policy.at("block_tokens").int_in_range(1, 1 << 16) : 16;
  // A reserve given in the scenario replaces the engine's own sizing of it.
  const bool reserve_given =
      kv_policy.maybe("reserve_fraction") || kv_policy.maybe("reserve_bytes");
  const double reserve_fraction = kv_policy.maybe("reserve_fraction")
                                      ? kv_policy.at("reserve_fraction").fraction()
                                      : engine.reserve_fraction;
  const double reserve_bytes =
      kv_policy.maybe("reserve_bytes")
          ? kv_policy.at("reserve_bytes").number_in_range(0, kMaxMemory_bytes)
          : engine.reserve_bytes;
  std::vector<InstanceLoad> out;
  std::vector<bool> gpu_used(cluster.gpus().size(), false);
  // One replica from `iv`; a template copy (`copy` >= 0) is named after it with its index and,
  // without "node" or "gpus", placed on the first node with enough free GPUs.
  auto load_one = [&](const JsonValue& iv, int64_t copy) {
    JsonObject o = iv.object();
    InstanceLoad load;
    load.pointer = iv.pointer();
    InstanceConfig& c = load.config;
    c.name = copy < 0 ? o.get_or("name", fmt::format("instance{}", out.size()))
                      : fmt::format("{}{}", o.get_or("name", std::string("replica")), copy);
    for (const auto& other : out)
      if (other.config.name == c.name) o.fail(fmt::format("duplicate instance name '{}'", c.name));
    if (auto role = o.maybe("role")) {
      const std::string name = role->one_of({"mixed", "prefill", "decode"});
      c.role = name == "prefill"  ? InstanceRole::kPrefill
               : name == "decode" ? InstanceRole::kDecode
                                  : InstanceRole::kMixed;
    }
    c.tp = static_cast<int>(o.maybe("tp") ? o.at("tp").int_in_range(1, kMaxParallelism) : 1);
    c.pp = static_cast<int>(o.maybe("pp") ? o.at("pp").int_in_range(1, kMaxParallelism) : 1);
    load_moe_layout(o, model, c);
    c.block_tokens = block_tokens;
    c.reserve_fraction = reserve_fraction;
    c.reserve_bytes = reserve_bytes;
    c.pp_microbatching = o.get_or("pp_microbatching", true);
    c.max_model_len =
        o.maybe("max_model_len") ? o.at("max_model_len").int_in_range(1, int64_t{1} << 32) : 0;
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
    } else if (copy >= 0 && !o.has("node")) {
      // A template copy without a place: the first node with tp x pp free GPUs, in node order,
      // so that a TP group shares one node's NVLink.
      int node = -1;
      for (int n = 0; n < static_cast<int>(cluster.nodes().size()) && node < 0; ++n) {
        size_t free = 0;
        for (size_t g = 0; g < cluster.gpus().size(); ++g)
          free += cluster.gpus()[g].node == n && !gpu_used[g];
        if (free >= want) node = n;
      }
      if (node < 0)
        o.fail(
            fmt::format("replica {} of /instances/count needs tp x pp = {} free GPUs on one "
                        "node; none is left",
                        copy, want));
      for (size_t g = 0; g < cluster.gpus().size() && c.gpus.size() < want; ++g)
        if (cluster.gpus()[g].node == node && !gpu_used[g]) {
          gpu_used[g] = true;
          c.gpus.push_back(static_cast<int>(g));
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
    const int attention_group = c.tp / c.moe.attention_dp;
    if (model.num_heads % attention_group != 0)
      o.at(c.moe.attention_dp > 1 ? "attention_dp" : "tp")
          .fail(fmt::format("tp / attention_dp = {} must divide the model's {} attention heads",
                            attention_group, model.num_heads));
    if (c.pp > model.num_layers)
      o.at("pp").fail(fmt::format("pp {} exceeds the model's {} layers", c.pp, model.num_layers));
    load.engine = engine_on_gpu(engine, smallest_gpu(c, cluster));
    if (!reserve_given) {
      // The engine sizes its reserve for the budget and sequence cap its batcher runs with.
      const KvReserve reserve = engine_kv_reserve(
          load.engine, model, c.tp, c.pp, smallest_gpu_memory_bytes(c, cluster),
          weight_bytes_per_gpu(model, precision.weights, c.tp, c.pp, c.moe, precision.experts),
          batcher_given.value("max_num_batched_tokens", load.engine.max_num_batched_tokens),
          batcher_given.value("max_num_seqs", load.engine.max_num_seqs));
      c.reserve_fraction = reserve.fraction;
      c.reserve_bytes = reserve.bytes;
    }
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
  };
  // {"template": {...}, "count": N}: N replicas alike, the knob a replica-count search turns.
  auto load_copies = [&](const JsonValue& tv) {
    JsonObject o = tv.object();
    const int64_t count = o.at("count").int_in_range(1, 1 << 16);
    const JsonValue templ = o.at("template");
    o.finish();
    for (int64_t i = 0; i < count; ++i) load_one(templ, i);
  };
  if (v.raw().is_object()) {
    load_copies(v);
  } else {
    // A list of replicas, each one alone or a template with a count (e.g. a prefill pool and a
    // decode pool).
    for (const JsonValue& iv : v.nonempty_array()) {
      if (iv.raw().is_object() && iv.raw().contains("template"))
        load_copies(iv);
      else
        load_one(iv, -1);
    }
  }
  return out;
}

CostModelConfig cost_model_inputs(const InstanceConfig& config, const Cluster& cluster,
                                  const ModelSpec& model, const Precision& precision,
                                  const KvPolicyConfig& kv_config, const KernelDb* kernel_db,
                                  const EnginePreset& engine) {
  CostModelConfig cost;
  cost.no_kv_cache = kv_config.mode == KvMode::kNoCache;
  cost.offload_fetch = kv_config.fetch;
  cost.host_path = cluster.host_path(config.gpus.front());
  cost.gpu = cluster.gpus()[config.gpus.front()].spec;
  for (int g : config.gpus)  // a mixed replica runs at its slowest GPU's pace
    if (cluster.gpus()[g].spec.bf16_flops_per_s < cost.gpu.bf16_flops_per_s)
      cost.gpu = cluster.gpus()[g].spec;
  cost.fit = find_kernel_fit(cost.gpu.name);
  cost.kernel_db = kernel_db;
  cost.model = model;
  cost.precision = precision;
  cost.tp = config.tp;
  cost.pp = config.pp;
  cost.moe = config.moe;
  if (model.moe()) {
    if (config.expert_load.kind != ExpertSkew::Kind::kUniform)
      cost.hot_group_expert_shares =
          busiest_group_shares(config.expert_load, model.num_experts, config.moe.ep);
    // All-to-all paths of the first stage's GPU 0 (the stages are laid out alike): the slowest
    // to a peer of its node and to a GPU of another node, and its node's share of the GPUs.
    const int first = config.gpus.front();
    int per_node = 0;
    for (int t = 0; t < config.tp; ++t) {
      const int g = config.gpus[static_cast<size_t>(t)];
      const bool same_node = cluster.gpus()[g].node == cluster.gpus()[first].node;
      per_node += same_node;
      if (g == first) continue;
      const Path p = cluster.gpu_path(first, g);
      Path& slowest = same_node ? cost.ep_intra_path : cost.ep_inter_path;
      if (slowest.link_ids.empty() || p.transfer_time_s(1 << 20) > slowest.transfer_time_s(1 << 20))
        slowest = p;
    }
    cost.ep_gpus_per_node = per_node;
    for (size_t k = 0; k < cost.ep_inter_path.link_ids.size(); ++k) {
      const Link& l = cluster.links()[static_cast<size_t>(cost.ep_inter_path.link_ids[k])];
      double& slowest = l.kind == LinkKind::kNetwork ? cost.ep_inter_shared_bytes_per_s
                                                     : cost.ep_inter_own_bytes_per_s;
      if (slowest == 0 || l.spec.bandwidth_bytes_per_s < slowest)
        slowest = l.spec.bandwidth_bytes_per_s;
    }
  }
  apply_engine_costs(engine, config.tp, smallest_gpu_memory_bytes(config, cluster), cost);
  // The slowest hop of each TP ring and of the PP chain sets the pace.
  cost.tp_on_nvlink = config.tp > 1;
  for (int s = 0; s < config.pp; ++s)
    for (int t = 0; t < config.tp && config.tp > 1; ++t) {
      const int a = config.gpus[static_cast<size_t>(s * config.tp + t)];
      const int b = config.gpus[static_cast<size_t>(s * config.tp + (t + 1) % config.tp)];
      const Path p = cluster.gpu_path(a, b);
      const bool nvlink =
          p.link_ids.size() == 1 && cluster.links()[p.link_ids[0]].kind == LinkKind::kNvlink;
      cost.tp_on_nvlink = cost.tp_on_nvlink && nvlink;
      if (cost.tp_path.link_ids.empty() ||
          p.transfer_time_s(1 << 20) > cost.tp_path.transfer_time_s(1 << 20))
        cost.tp_path = p;
    }
  for (int s = 0; s + 1 < config.pp; ++s) {
    const Path p = cluster.gpu_path(config.gpus[static_cast<size_t>(s * config.tp)],
                                    config.gpus[static_cast<size_t>((s + 1) * config.tp)]);
    if (cost.pp_path.link_ids.empty() ||
        p.transfer_time_s(1 << 20) > cost.pp_path.transfer_time_s(1 << 20))
      cost.pp_path = p;
  }
  return cost;
}

}  // namespace servesim

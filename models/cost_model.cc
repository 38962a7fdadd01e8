#include "models/cost_model.h"

#include <algorithm>
#include <cmath>

#include "sim/error.h"

namespace servesim {
namespace {

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

/// The GEMM rate and fitted constants for the weights' format on this GPU.
struct GemmParams {
  double peak_flops_per_s;
  GemmFit fit;
  double penalty = 1.0;
};

GemmParams gemm_params(const CostModelConfig& c, DType w) {
  const bool quantized_native = (w == DType::kFp8 || w == DType::kInt8) && c.gpu.native(w);
  GemmParams p{c.gpu.peak_flops_per_s(quantized_native ? w : DType::kBf16), {}};
  if (c.fit) {
    p.fit = quantized_native ? c.fit->gemm_fp8 : c.fit->gemm_bf16;
    if (quantized_native && w == DType::kFp8) {
      if (c.engine_fp8_gemm.memory_efficiency > 0)
        p.fit.memory_efficiency = c.engine_fp8_gemm.memory_efficiency;
      p.fit.m_half *= c.engine_fp8_gemm.m_half_factor;
    }
  } else {
    p.fit = GemmFit{DefaultEfficiency::kGemmOverheadS, DefaultEfficiency::kGemmCompute,
                    DefaultEfficiency::kGemmMHalf, DefaultEfficiency::kGemmMemory, 0};
  }
  if (bytes_per_element(w) < 2 && !quantized_native)
    p.penalty = DefaultEfficiency::kDequantComputePenalty;
  return p;
}

double memory_efficiency(const CostModelConfig& c) {
  return c.fit ? c.fit->attention_bf16_kv.decode_memory_efficiency
               : DefaultEfficiency::kDecodeAttentionMemory;
}

/// All-reduce over `n` GPUs of the replica's TP ring (n = tp, or an attention group's size).
double allreduce_time(const CostModelConfig& c, double bytes, int n,
                      AllReduceSegmentLogs* memo = nullptr) {
  if (n <= 1) return 0;
  if (c.kernel_db && c.tp_on_nvlink && c.kernel_db->has_allreduce(n))
    return c.kernel_db->allreduce_time_s(n, bytes);
  if (c.fit && c.tp_on_nvlink) {
    const int index = n == 2 ? 1 : n == 4 ? 2 : n == 8 ? 3 : 0;
    if (index > 0 && c.fit->allreduce[index].bus_bandwidth_bytes_per_s > 0)
      return allreduce_time_s(c.fit->allreduce[index], bytes, memo);
  }
  // Ring all-reduce: reduce-scatter then all-gather, 2(n-1) steps of bytes/n each.
  const double steps = 2.0 * (n - 1);
  return steps * c.tp_path.latency_s + steps * (bytes / n) / c.tp_path.bandwidth_bytes_per_s;
}

/// The fitted GEMM form for weights in `w`, whose parameters are `p` (gemm_params(c, w)).
double gemm_time_with(const CostModelConfig& c, const GemmParams& p, double m, double n, double k,
                      DType w) {
  if (m <= 0) return 0;
  if (c.kernel_db && c.kernel_db->supports_gemm(w, c.precision.activations))
    return c.kernel_db->gemm_time_s(m, n, k, w);
  // The fitted form of models/kernel_fit.h, with weights and activations counted at their own
  // widths so that weight-only formats (int4 weights, bf16 activations) are priced right.
  const double compute_s = 2.0 * n * k * (m + p.fit.m_half) * p.penalty /
                           (p.peak_flops_per_s * p.fit.compute_efficiency);
  const double bytes =
      n * k * bytes_per_element(w) + (m * k + m * n) * bytes_per_element(c.precision.activations);
  const double memory_s = bytes / (c.gpu.hbm_bandwidth_bytes_per_s * p.fit.memory_efficiency);
  const double extra_pass_s = p.fit.extra_mk_bytes * m * k / c.gpu.hbm_bandwidth_bytes_per_s;
  return p.fit.overhead_s + std::max(compute_s, memory_s) + extra_pass_s;
}

/// The fitted GEMM form for weights in `w`.
double gemm_time_as(const CostModelConfig& c, double m, double n, double k, DType w) {
  return gemm_time_with(c, gemm_params(c, w), m, n, k, w);
}

/// One grouped GEMM (one launch) over the experts of a GPU: `rows` token rows in all, spread
/// over `active` experts that receive at least one, each (rows_e x k) . (k x n). Each expert's
/// product ramps up like a GEMM of its own rows (m_half per active expert); every active
/// expert's weights are read once. The fitted dense-GEMM constants of the expert format apply
/// (no grouped-GEMM table is measured).
double grouped_gemm_time(const CostModelConfig& c, double rows, double active, double n, double k) {
  if (rows <= 0) return 0;
  const DType w = c.precision.expert_weights();
  const GemmParams p = gemm_params(c, w);
  const double compute_s = 2.0 * n * k * (rows + active * p.fit.m_half) * p.penalty /
                           (p.peak_flops_per_s * p.fit.compute_efficiency);
  const double bytes = active * n * k * bytes_per_element(w) +
                       rows * (k + n) * bytes_per_element(c.precision.activations);
  const double memory_s = bytes / (c.gpu.hbm_bandwidth_bytes_per_s * p.fit.memory_efficiency);
  const double extra_pass_s = p.fit.extra_mk_bytes * rows * k / c.gpu.hbm_bandwidth_bytes_per_s;
  return p.fit.overhead_s + std::max(compute_s, memory_s) + extra_pass_s;
}

/// One dispatch (or combine) all-to-all. A token goes once to each GPU of its node that holds
/// one of its experts, and once to each other node that does (forwarded there over NVLink, not
/// priced), as DeepEP's hierarchical kernels send it; with experts uniform over G EP groups a
/// group receives a given token with probability p = 1 - (1 - 1/G)^k and another node with
/// 1 - (1 - 1/nodes)^k. The slower of the busiest sender (`send_tokens` rows) and the busiest
/// receiver (`recv_tokens` rows from everywhere else) sets the time. Bytes to peers of the node
/// cross one GPU's NVLink (or PCIe) path; bytes to other nodes cross the GPU's own path to the
/// NIC, then the node's network link, which its GPUs share.
struct AllToAll {
  double time_s = 0;
  double intra_bytes = 0;  ///< sent by one GPU to peers in its node (mean GPU)
  double inter_bytes = 0;  ///< sent by one GPU to other nodes (mean GPU)
};

AllToAll all_to_all(const CostModelConfig& c, double row_bytes, double send_tokens,
                    double mean_tokens, double recv_tokens) {
  const double world = c.tp;
  const double per_node = c.ep_gpus_per_node;
  const double nodes = world / per_node;
  const double k = static_cast<double>(c.model.experts_per_token);
  const double p_gpu = 1 - std::pow(1 - 1.0 / c.moe.ep, k);
  const double p_node = 1 - std::pow(1 - 1 / nodes, k);
  const double intra_copies = (per_node - 1) * p_gpu;
  const double inter_copies = (nodes - 1) * p_node;
  // intra: bytes on this GPU's NVLink path; own: on its path to the NIC; shared: on the node's
  // network link, which carries every GPU of the node.
  auto side_s = [&](double intra, double own, double shared) {
    double t = 0;
    if (intra > 0 && !c.ep_intra_path.link_ids.empty())
      t = std::max(t, c.ep_intra_path.transfer_time_s(intra));
    if (own > 0 && !c.ep_inter_path.link_ids.empty()) {
      const double own_bw = c.ep_inter_own_bytes_per_s > 0 ? c.ep_inter_own_bytes_per_s
                                                           : c.ep_inter_path.bandwidth_bytes_per_s;
      const double shared_bw = c.ep_inter_shared_bytes_per_s > 0
                                   ? c.ep_inter_shared_bytes_per_s
                                   : c.ep_inter_path.bandwidth_bytes_per_s;
      t = std::max(t, c.ep_inter_path.latency_s + std::max(own / own_bw, shared / shared_bw));
    }
    return t;
  };
  const double send_inter = send_tokens * inter_copies * row_bytes;
  const double send_s =
      side_s(send_tokens * intra_copies * row_bytes, send_inter,
             send_inter + (per_node - 1) * mean_tokens * inter_copies * row_bytes);
  // The receiver's rows come from the node's other GPUs and the other nodes in proportion;
  // its node takes each remote token once (p_node of the other nodes' tokens).
  const double remote = world - 1;
  const double recv_s = side_s(recv_tokens * row_bytes * (per_node - 1) / remote,
                               recv_tokens * row_bytes * (world - per_node) / remote,
                               mean_tokens * (world - per_node) * p_node * row_bytes);
  return {std::max(send_s, recv_s), mean_tokens * intra_copies * row_bytes,
          mean_tokens * inter_copies * row_bytes};
}

}  // namespace

int64_t cuda_graph_padded_batch(int64_t batch) {
  if (batch <= 4) return batch <= 2 ? batch : 4;
  if (batch <= 256) return ceil_div(batch, 8) * 8;
  return ceil_div(batch, 16) * 16;
}

void BatchShape::add_prefill(int64_t prefix_tokens, int64_t new_tokens, bool emits_token) {
  ++sequences;
  tokens += new_tokens;
  if (emits_token) ++logit_rows;
  // Query i of the chunk attends to the prefix and to the chunk's first i+1 tokens.
  const double n = static_cast<double>(new_tokens);
  const double pairs = n * static_cast<double>(prefix_tokens) + n * (n + 1) / 2;
  prefill_attention_pairs += pairs;
  prefill_prefix_tokens += static_cast<double>(prefix_tokens);
  if (new_tokens > max_chunk_tokens) {
    max_chunk_tokens = new_tokens;
    max_chunk_pairs = pairs;
    max_chunk_prefix_tokens = static_cast<double>(prefix_tokens);
  }
}

double stage_layer_share(int64_t num_layers, int pp, int stage) {
  return static_cast<double>(num_layers / pp + (stage < num_layers % pp ? 1 : 0)) /
         static_cast<double>(num_layers);
}

BatchShape BatchShape::micro_batch(int64_t parts) const {
  BatchShape m = *this;
  const auto f = 1.0 / static_cast<double>(parts);
  auto part = [&](int64_t n) { return (n + parts - 1) / parts; };
  m.sequences = part(sequences);
  m.tokens = part(tokens);
  m.logit_rows = part(logit_rows);
  m.decode_sequences = part(decode_sequences);
  for (double* d : {&m.decode_context_tokens, &m.prefill_attention_pairs, &m.prefill_prefix_tokens,
                    &m.decode_context_sq_tokens, &m.host_kv_tokens, &m.offload_tokens})
    *d *= f;
  return m;
}

void IterationCost::scale_work(int64_t parts) {
  const auto k = static_cast<double>(parts);
  for (double* d :
       {&layer_flops, &layer_hbm_bytes, &head_flops, &head_hbm_bytes, &layer_flops_step_growth,
        &layer_hbm_bytes_step_growth, &host_to_gpu_bytes_per_gpu, &gpu_to_host_bytes_per_gpu,
        &tp_bytes_per_gpu, &pp_bytes_per_hop, &ep_intra_bytes_per_gpu, &ep_inter_bytes_per_gpu})
    *d *= k;
  microbatches *= parts;
}

void BatchShape::add_decode(int64_t context_tokens) {
  ++sequences;
  tokens += 1;
  ++logit_rows;
  ++decode_sequences;
  decode_context_tokens += static_cast<double>(context_tokens);
  decode_context_sq_tokens +=
      static_cast<double>(context_tokens) * static_cast<double>(context_tokens);
}

double gemm_time(const CostModelConfig& c, double m, double n, double k) {
  return gemm_time_as(c, m, n, k, c.precision.weights);
}

std::vector<double> busiest_group_shares(const ExpertSkew& skew, int64_t num_experts, int ep) {
  std::vector<double> shares(static_cast<size_t>(num_experts), 1.0);
  if (skew.kind == ExpertSkew::Kind::kZipf) {
    for (size_t e = 0; e < shares.size(); ++e)
      shares[e] = std::pow(static_cast<double>(e + 1), -skew.zipf_exponent);
  } else if (skew.kind == ExpertSkew::Kind::kMeasured) {
    SERVESIM_CHECK(skew.loads.size() == shares.size(), "{} expert loads for {} experts",
                   skew.loads.size(), shares.size());
    shares = skew.loads;
  }
  double total = 0;
  for (double x : shares) total += x;
  for (double& x : shares) x /= total;
  const size_t per_group = shares.size() / static_cast<size_t>(ep);
  size_t best = 0;
  double best_share = -1;
  for (size_t g = 0; g < static_cast<size_t>(ep); ++g) {
    double share = 0;
    for (size_t e = g * per_group; e < (g + 1) * per_group; ++e) share += shares[e];
    if (share > best_share) {
      best_share = share;
      best = g;
    }
  }
  return {shares.begin() + static_cast<std::ptrdiff_t>(best * per_group),
          shares.begin() + static_cast<std::ptrdiff_t>((best + 1) * per_group)};
}

double weight_bytes_per_gpu(const ModelSpec& m, DType weights, int tp, int pp, const MoeLayout& moe,
                            std::optional<DType> expert_weights) {
  const int64_t layers = ceil_div(m.num_layers, pp);
  // With PP the embedding sits on the first stage and the LM head on the last; with one
  // stage both (or the tied one) sit on every GPU's shard.
  const int64_t embeddings =
      pp == 1 ? m.embedding_params() * (m.tied_embeddings ? 1 : 2) : m.embedding_params();
  if (!m.moe() && moe.attention_dp == 1) {
    const double params = static_cast<double>(layers * m.params_per_layer() + embeddings) / tp;
    return params * bytes_per_element(weights);
  }
  // The most loaded stage holds the most MoE layers: the first stages hold the dense ones.
  const int64_t moe_layers = std::min(layers, m.moe_layers());
  const int64_t dense_layers = layers - moe_layers;
  const double attention_group = static_cast<double>(tp) / moe.attention_dp;
  const int64_t moe_layer_rest =
      m.params_per_moe_layer() - (m.num_experts + m.shared_experts) * m.expert_params();
  const double replicated = static_cast<double>(dense_layers * m.params_per_layer() +
                                                moe_layers * moe_layer_rest + embeddings) /
                            attention_group;
  const DType experts = expert_weights.value_or(weights);
  const double shared = static_cast<double>(moe_layers * m.shared_experts * m.expert_params()) /
                        attention_group * bytes_per_element(experts);
  const double routed = static_cast<double>(moe_layers * m.num_experts * m.expert_params()) / tp *
                        bytes_per_element(experts);
  return replicated * bytes_per_element(weights) + shared + routed;
}

double kv_bytes_per_token_per_gpu(const ModelSpec& m, DType kv, int tp, int pp, int attention_dp) {
  const int64_t layers = ceil_div(m.num_layers, pp);
  if (m.mla())
    return static_cast<double>(layers * m.kv_elements_per_token_per_layer()) *
           bytes_per_element(kv) / attention_dp;
  const int64_t kv_heads = std::max<int64_t>(1, m.num_kv_heads / (tp / attention_dp));
  const double bytes =
      2.0 * static_cast<double>(layers * kv_heads * m.head_dim) * bytes_per_element(kv);
  return attention_dp == 1 ? bytes : bytes / attention_dp;
}

double mfu_peak_flops_per_s(const CostModelConfig& c) {
  return gemm_params(c, c.precision.weights).peak_flops_per_s;
}

IterationCost price_iteration(const CostModelConfig& c, const BatchShape& b, GemmTimeCache* cache) {
  IterationCost cost;
  if (b.tokens <= 0) return cost;
  const ModelSpec& m = c.model;
  const double tp = c.tp;
  // Attention runs in attention_dp groups of tp / attention_dp GPUs, each with an even share
  // of the batch (1 and tp for dense models: the divisions below are then exact no-ops).
  const double adp = c.moe.attention_dp;
  const double attn_tp = tp / adp;
  const int attn_group = c.tp / c.moe.attention_dp;
  const double tokens = static_cast<double>(b.tokens);
  const double hidden = static_cast<double>(m.hidden_size);
  const double act_bytes = bytes_per_element(c.precision.activations);
  const double kv_elem_bytes = bytes_per_element(c.precision.kv);
  const double heads_per_gpu = static_cast<double>(m.num_heads) / attn_tp;
  const double kv_heads_per_gpu = std::max(1.0, static_cast<double>(m.num_kv_heads) / attn_tp);
  const double head_dim = static_cast<double>(m.head_dim);
  const double layers = static_cast<double>(m.num_layers);
  const double moe_layers = static_cast<double>(m.moe_layers());
  const double dense_layers = layers - moe_layers;

  // Without a KV cache every step runs the whole context through the projections again.
  double gemm_rows =
      c.no_kv_cache ? b.decode_context_tokens + (tokens - static_cast<double>(b.decode_sequences))
                    : tokens;
  // A decode-only batch replays the CUDA graph of the next captured size, padding included.
  const bool decode_only = b.tokens == b.decode_sequences && !c.no_kv_cache;
  const bool graphed =
      c.cuda_graph_max_batch >= 0 && decode_only && b.decode_sequences <= c.cuda_graph_max_batch;
  if (graphed) gemm_rows = static_cast<double>(cuda_graph_padded_batch(b.decode_sequences));
  // Token rows through the busiest attention group: an even share, or the largest prefill
  // chunk, which one group runs whole (the decodes of the group aside: a bound, not a sum).
  const double rows_per_group =
      adp > 1 ? std::max(gemm_rows / adp, static_cast<double>(b.max_chunk_tokens)) : gemm_rows;
  const double q = static_cast<double>(m.q_size()), kv = static_cast<double>(m.kv_size());
  const double attn_out = static_cast<double>(m.attention_out_size());
  const double ffn = static_cast<double>(m.ffn_hidden_size);
  const double w_bytes = bytes_per_element(c.precision.weights);
  // Weight elements of the attention projections on one rank and their k + n (activations in
  // and out), for MFU and MBU.
  double attn_weights = ((q + 2 * kv) / attn_tp + attn_out / attn_tp) * hidden;
  double attn_edges = ((q + 2 * kv) / attn_tp + hidden) + (hidden + attn_out / attn_tp);
  // MLA's widths (zero without MLA), read by the weight counts and the GEMM times below.
  const double q_lora = static_cast<double>(m.q_lora_rank);
  const double kv_lora = static_cast<double>(m.kv_lora_rank);
  const double rope = static_cast<double>(m.qk_rope_head_dim);
  const double v_dim = static_cast<double>(m.v_head_dim);
  const double heads = static_cast<double>(m.num_heads);
  if (m.mla()) {
    // q_a and kv_a are replicated on every GPU of the group (as the engines do); q_b, kv_b and
    // o are sharded by heads. In the absorbed decode form kv_b multiplies the queries and the
    // attention output instead of the keys: the same weights, one row per token either way.
    const double q_in = q_lora > 0 ? q_lora : hidden;
    const double kv_b = heads * (head_dim + v_dim) / attn_tp;
    attn_weights = (q_lora > 0 ? q_lora * hidden : 0) + q / attn_tp * q_in +
                   (kv_lora + rope) * hidden + kv_b * kv_lora + hidden * attn_out / attn_tp;
    attn_edges = (q_lora > 0 ? q_lora + hidden : 0) + (q / attn_tp + q_in) +
                 (kv_lora + rope + hidden) + (kv_b + kv_lora) + (hidden + attn_out / attn_tp);
  }
  // The GEMM times depend on the rows alone (with the configuration): reused when they repeat.
  const auto layer_gemms = [&] {
    // The weights' GEMM parameters, looked up once for the layers' GEMMs.
    const GemmParams params = gemm_params(c, c.precision.weights);
    const auto weights_gemm_s = [&](double n, double k) {
      return gemm_time_with(c, params, rows_per_group, n, k, c.precision.weights);
    };
    GemmTimeCache::Layers times{rows_per_group, 0, 0, 0};
    if (m.mla()) {
      times.attention_gemm_s =
          (q_lora > 0 ? weights_gemm_s(q_lora, hidden) + weights_gemm_s(q / attn_tp, q_lora)
                      : weights_gemm_s(q / attn_tp, hidden)) +
          weights_gemm_s(kv_lora + rope, hidden) +
          weights_gemm_s(heads * (head_dim + v_dim) / attn_tp, kv_lora) +
          weights_gemm_s(hidden, attn_out / attn_tp);
    } else {
      times.attention_gemm_s = weights_gemm_s((q + 2 * kv) / attn_tp, hidden) +
                               weights_gemm_s(hidden, attn_out / attn_tp);
    }
    times.per_layer_gemm_s = times.attention_gemm_s +
                             weights_gemm_s((m.gated_mlp ? 2 : 1) * ffn / attn_tp, hidden) +
                             weights_gemm_s(hidden, ffn / attn_tp);
    // Dense layers all-reduce after attention and after the MLP, MoE layers after attention.
    if (attn_group > 1)
      times.allreduce_s = allreduce_time(c, rows_per_group * hidden * act_bytes, attn_group,
                                         cache ? &cache->layer_allreduce : nullptr);
    return times;
  };
  // A table's entry for `rows`, computed when its slot holds another row count.
  const auto remembered = [](auto* table, double rows, auto compute) {
    if (table == nullptr) return compute();
    auto& slot = (*table)[GemmTimeCache::slot(rows)];
    if (slot.rows != rows) slot = compute();
    return slot;
  };
  const GemmTimeCache::Layers gemms =
      remembered(cache ? &cache->layers : nullptr, rows_per_group, layer_gemms);
  const double attention_gemm_s = gemms.attention_gemm_s;
  const double per_layer_gemm = gemms.per_layer_gemm_s;
  cost.gemm_s = dense_layers * per_layer_gemm;
  // Work of the dense layers' GEMMs on one rank, for MFU and MBU.
  {
    const double up = (m.gated_mlp ? 2 : 1) * ffn / attn_tp;
    const double weights = attn_weights + (up + ffn / attn_tp) * hidden;
    const double act_edges = attn_edges + (hidden + up) + (ffn / attn_tp + hidden);
    cost.layer_flops = dense_layers * 2 * rows_per_group * weights;
    cost.layer_hbm_bytes =
        dense_layers * (weights * w_bytes + rows_per_group * act_edges * act_bytes);
  }

  // MoE layers: router, shared experts (a dense MLP over the attention group), and the routed
  // experts of the busiest EP group, whose GPU sets the pace of the layer.
  double hot_rows = 0;  // routed token rows reaching each GPU of the busiest EP group
  double moe_tp = 1;
  if (m.moe()) {
    const double ffn_e = static_cast<double>(m.expert_ffn_hidden_size);
    const double shared = static_cast<double>(m.shared_experts);
    const double routed = gemm_rows * static_cast<double>(m.experts_per_token);
    moe_tp = tp / c.moe.ep;
    double active = 0;
    auto add_expert = [&](double share) {
      const double expert_rows = routed * share;
      hot_rows += expert_rows;
      // An expert's token count is close to Poisson: it is idle (its weights unread) with
      // probability exp(-mean).
      active += 1 - std::exp(-expert_rows);
    };
    if (c.hot_group_expert_shares.empty()) {
      const int64_t per_group = m.num_experts / c.moe.ep;
      for (int64_t e = 0; e < per_group; ++e) add_expert(1.0 / static_cast<double>(m.num_experts));
    } else {
      for (double share : c.hot_group_expert_shares) add_expert(share);
    }
    cost.expert_gemm_s =
        moe_layers *
        (grouped_gemm_time(c, hot_rows, active, (m.gated_mlp ? 2 : 1) * ffn_e / moe_tp, hidden) +
         grouped_gemm_time(c, hot_rows, active, hidden, ffn_e / moe_tp));
    const DType expert_format = c.precision.expert_weights();
    const double shared_s =
        shared > 0
            ? gemm_time_as(c, rows_per_group, (m.gated_mlp ? 2 : 1) * shared * ffn_e / attn_tp,
                           hidden, expert_format) +
                  gemm_time_as(c, rows_per_group, hidden, shared * ffn_e / attn_tp, expert_format)
            : 0;
    const double router_s =
        gemm_time_as(c, rows_per_group, static_cast<double>(m.num_experts), hidden, DType::kBf16);
    cost.gemm_s += moe_layers * (attention_gemm_s + shared_s + router_s) + cost.expert_gemm_s;
    // MoE layers' work on the busiest GPU: attention and router over the group's rows, shared
    // experts likewise, the routed rows through the experts that received any, whose weights
    // are read once each.
    const double up_e = (m.gated_mlp ? 2 : 1) * ffn_e / moe_tp;
    const double expert_weights = (up_e + ffn_e / moe_tp) * hidden;
    const double shared_weights = shared * ((m.gated_mlp ? 2 : 1) + 1) * ffn_e / attn_tp * hidden;
    const double router_weights = static_cast<double>(m.num_experts) * hidden;
    const double expert_bytes = bytes_per_element(expert_format);
    cost.layer_flops += moe_layers * 2 *
                        (rows_per_group * (attn_weights + shared_weights + router_weights) +
                         hot_rows * expert_weights);
    cost.layer_hbm_bytes +=
        moe_layers *
        (attn_weights * w_bytes + (shared_weights + active * expert_weights) * expert_bytes +
         router_weights * 2 + rows_per_group * attn_edges * act_bytes +
         hot_rows * (hidden + up_e + ffn_e / moe_tp + hidden) * act_bytes);
  }

  // Attention. Decode reads each request's cached K and V once per layer.
  const AttentionFit attention = c.fit
                                     ? c.fit->attention_bf16_kv
                                     : AttentionFit{DefaultEfficiency::kDecodeAttentionOverheadS,
                                                    DefaultEfficiency::kDecodeAttentionPerRequestS,
                                                    DefaultEfficiency::kDecodeAttentionMemory,
                                                    DefaultEfficiency::kPrefillAttentionOverheadS,
                                                    DefaultEfficiency::kPrefillAttentionCompute};
  const double peak = c.gpu.peak_flops_per_s(DType::kBf16);
  const double group_sequences = static_cast<double>(b.decode_sequences) / adp;
  const double group_context = b.decode_context_tokens / adp;
  double per_layer_attention = 0;
  if (b.decode_sequences > 0 && !c.no_kv_cache) {
    // Each decoding request reads its cached K and V and does 4 head_dim flops per (query
    // head, key) pair; a stretch's next step attends over one more key per request.
    const double flops_per_token = 4.0 * head_dim * heads_per_gpu;
    const double bytes_per_token = 2 * kv_heads_per_gpu * head_dim * kv_elem_bytes;
    const double n = static_cast<double>(b.decode_sequences);
    cost.layer_flops += layers * flops_per_token * b.decode_context_tokens;
    cost.layer_hbm_bytes += layers * bytes_per_token * b.decode_context_tokens;
    cost.layer_flops_step_growth = layers * flops_per_token * n;
    cost.layer_hbm_bytes_step_growth = layers * bytes_per_token * n;
  }
  if (b.decode_sequences > 0) {
    if (c.no_kv_cache) {
      // Causal attention over the whole context, recomputed: ctx (ctx + 1) / 2 (query, key)
      // pairs per request, summed exactly over requests of different contexts.
      const double pairs = (b.decode_context_sq_tokens + b.decode_context_tokens) / 2;
      const double flops = 4.0 * head_dim * heads_per_gpu * pairs;
      per_layer_attention += prefill_attention_time_s(attention, peak, flops);
      cost.layer_flops += layers * flops;
    } else if (m.mla()) {
      // Absorbed MLA: every head reads the same latent + rope key (kv bytes once per token),
      // scores over latent + rope and accumulates in the latent: 2 (2 kv_lora + rope) flops per
      // head and cached token. Both bounds grow with the context alone, so the time stays
      // linear in it (the decode stretches rely on that): the larger one is charged.
      const double latent = static_cast<double>(m.kv_elements_per_token_per_layer());
      const double kv_bytes = group_context * latent * kv_elem_bytes;
      const double flops =
          group_context * heads_per_gpu * 2 * (latent + static_cast<double>(m.kv_lora_rank));
      const double bandwidth = c.gpu.hbm_bandwidth_bytes_per_s;
      const double compute_as_bytes = flops / (peak * attention.prefill_compute_efficiency) *
                                      bandwidth * attention.decode_memory_efficiency;
      per_layer_attention += decode_attention_time_s(attention, bandwidth, group_sequences,
                                                     std::max(kv_bytes, compute_as_bytes));
    } else if (c.kernel_db && c.kernel_db->supports_kv(c.precision.kv)) {
      // Measured per (batch, context): the mean context stands for each request's (decode
      // attention is close to linear in batch x context).
      const double batch = group_sequences;
      per_layer_attention += c.kernel_db->decode_attention_time_s(
          batch, group_context / batch, static_cast<int>(std::lround(heads_per_gpu)),
          static_cast<int>(std::lround(kv_heads_per_gpu)), static_cast<int>(m.head_dim),
          c.precision.kv);
    } else {
      const double kv_bytes = group_context * 2 * kv_heads_per_gpu * head_dim * kv_elem_bytes;
      per_layer_attention += decode_attention_time_s(attention, c.gpu.hbm_bandwidth_bytes_per_s,
                                                     group_sequences, kv_bytes);
    }
  }
  if (b.prefill_attention_pairs > 0) {
    const double pairs = adp > 1 ? std::max(b.prefill_attention_pairs / adp, b.max_chunk_pairs)
                                 : b.prefill_attention_pairs;
    // Per (query, key) pair and head: q.k over the query width, p.v over the value width.
    const double flops = m.mla() ? 2.0 *
                                       (head_dim + static_cast<double>(m.qk_rope_head_dim) +
                                        static_cast<double>(m.v_head_dim)) *
                                       heads_per_gpu * pairs
                                 : 4.0 * head_dim * heads_per_gpu * pairs;
    const double prefix_tokens =
        adp > 1 ? std::max(b.prefill_prefix_tokens / adp, b.max_chunk_prefix_tokens)
                : b.prefill_prefix_tokens;
    const double prefix_bytes =
        m.mla() ? prefix_tokens * static_cast<double>(m.kv_elements_per_token_per_layer()) *
                      kv_elem_bytes
                : prefix_tokens * 2 * kv_heads_per_gpu * head_dim * kv_elem_bytes;
    // Measured: one causal prompt with as many (query, key) pairs, isl (isl + 1) / 2.
    const double compute_s =
        c.kernel_db && !m.mla()
            ? c.kernel_db->prefill_attention_time_s(1, (std::sqrt(8 * pairs + 1) - 1) / 2,
                                                    static_cast<int>(std::lround(heads_per_gpu)),
                                                    static_cast<int>(std::lround(kv_heads_per_gpu)),
                                                    static_cast<int>(m.head_dim))
            : prefill_attention_time_s(attention, peak, flops);
    per_layer_attention += std::max(
        compute_s, prefix_bytes / (c.gpu.hbm_bandwidth_bytes_per_s * memory_efficiency(c)));
    cost.layer_flops += layers * flops;
    cost.layer_hbm_bytes += layers * prefix_bytes;
  }
  cost.attention_s = layers * per_layer_attention;

  // Elementwise kernels of one layer, each at least a launch floor: two fused residual-add +
  // RMSNorms (read x and residual, write both), rotary in place on this GPU's q and k heads,
  // SiLU-and-mul over its share of the FFN (read gate and up, write one).
  const double bandwidth = c.gpu.hbm_bandwidth_bytes_per_s * memory_efficiency(c);
  auto small_kernel_s = [&](double bytes) {
    return std::max(DefaultEfficiency::kSmallKernelFloorS, bytes / bandwidth);
  };
  const double row_bytes = rows_per_group * act_bytes;
  const double norms_rotary_s = 2 * small_kernel_s(4 * hidden * row_bytes) +
                                small_kernel_s(2 * (q + kv) / attn_tp * row_bytes);
  const double per_layer_elementwise =
      norms_rotary_s + small_kernel_s(3 * ffn / attn_tp * row_bytes);
  cost.elementwise_s = dense_layers * per_layer_elementwise;
  const double norms_rotary_bytes = (2 * 4 * hidden + 2 * (q + kv) / attn_tp) * row_bytes;
  cost.layer_hbm_bytes += dense_layers * (norms_rotary_bytes + 3 * ffn / attn_tp * row_bytes);
  if (m.moe()) {
    // SiLU-and-mul over the routed rows of the busiest GPU and over the shared experts; the
    // permutation of routed rows into expert order and back (read and write each).
    const double ffn_e = static_cast<double>(m.expert_ffn_hidden_size);
    const double shared = static_cast<double>(m.shared_experts);
    const double per_moe_layer =
        norms_rotary_s + small_kernel_s(3 * ffn_e / moe_tp * hot_rows * act_bytes) +
        (shared > 0 ? small_kernel_s(3 * shared * ffn_e / attn_tp * row_bytes) : 0) +
        2 * small_kernel_s(2 * hidden * hot_rows * act_bytes);
    cost.elementwise_s += moe_layers * per_moe_layer;
    cost.layer_hbm_bytes +=
        moe_layers * (norms_rotary_bytes + 3 * ffn_e / moe_tp * hot_rows * act_bytes +
                      3 * shared * ffn_e / attn_tp * row_bytes + 4 * hidden * hot_rows * act_bytes);
  }

  // Embedding gather, the vocabulary-parallel LM head and its logits gathered across TP, then
  // sampling over the fp32 logits of every row that emits a token.
  const double rows = static_cast<double>(b.logit_rows) / adp;
  const double vocab = static_cast<double>(m.vocab_size);
  const auto head_times = [&] {
    GemmTimeCache::Head times{rows, gemm_time(c, rows, vocab / attn_tp, hidden), 0};
    if (attn_group > 1 && rows > 0)
      times.allreduce_s = allreduce_time(c, rows * vocab * act_bytes, attn_group,
                                         cache ? &cache->head_allreduce : nullptr);
    return times;
  };
  const GemmTimeCache::Head head = remembered(cache ? &cache->heads : nullptr, rows, head_times);
  cost.lm_head_s =
      small_kernel_s(rows_per_group * hidden * act_bytes) + head.gemm_s + head.allreduce_s / 2 +
      (rows > 0 ? DefaultEfficiency::kSamplingPasses * small_kernel_s(rows * vocab * 4) : 0);
  cost.head_flops = 2 * rows * vocab / tp * hidden;
  cost.head_hbm_bytes = gemm_rows * hidden * act_bytes +
                        (rows > 0 ? vocab / tp * hidden * w_bytes : 0) +
                        rows * (hidden + vocab / tp) * act_bytes +
                        DefaultEfficiency::kSamplingPasses * rows * vocab * 4;

  if (attn_group > 1) {
    // Dense layers: after attention and after the MLP; MoE layers: after attention.
    const double bytes = rows_per_group * hidden * act_bytes;
    cost.tp_comm_s = 2 * dense_layers * gemms.allreduce_s;
    cost.tp_bytes_per_gpu = 2 * dense_layers * 2.0 * (attn_tp - 1) / attn_tp * bytes;
    if (m.moe()) {
      cost.tp_comm_s += moe_layers * gemms.allreduce_s;
      cost.tp_bytes_per_gpu += moe_layers * 2.0 * (attn_tp - 1) / attn_tp * bytes;
    }
  }
  if (m.moe() && c.tp > 1) {
    const double k = static_cast<double>(m.experts_per_token);
    if (c.moe.ep == 1) {
      // Experts sharded by columns over all tp GPUs: the MoE output is all-reduced over them
      // (with attention DP, the all-gather and reduce-scatter of every group's tokens, which
      // move as much).
      const double bytes = gemm_rows * hidden * act_bytes;
      cost.tp_comm_s += moe_layers * allreduce_time(c, bytes, c.tp);
      cost.tp_bytes_per_gpu += moe_layers * 2.0 * (tp - 1) / tp * bytes;
    } else {
      // Dispatch then combine: each GPU sends its 1/tp share of the step's tokens to the GPUs
      // and nodes holding their experts (every GPU of an EP group takes the whole row for its
      // column shard). The busiest sender is a prefill chunk's attention group; the busiest
      // receiver the hot EP group, hit by a token with probability 1 - (1 - share)^k.
      double hot_share = 0;
      if (c.hot_group_expert_shares.empty())
        hot_share = 1.0 / c.moe.ep;
      else
        for (double share : c.hot_group_expert_shares) hot_share += share;
      const double token_bytes = hidden * act_bytes;
      const double mean_tokens = gemm_rows / tp;
      const AllToAll a2a =
          all_to_all(c, token_bytes, std::max(mean_tokens, rows_per_group / attn_tp), mean_tokens,
                     gemm_rows * (1 - std::pow(1 - hot_share, k)));
      cost.ep_comm_s = moe_layers * 2 * a2a.time_s;
      cost.ep_intra_bytes_per_gpu = moe_layers * 2 * a2a.intra_bytes;
      cost.ep_inter_bytes_per_gpu = moe_layers * 2 * a2a.inter_bytes;
      if (moe_tp > 1) {
        // Partial sums of the column-sharded experts, reduced inside the EP group.
        const double bytes = hot_rows * hidden * act_bytes;
        cost.tp_comm_s += moe_layers * allreduce_time(c, bytes, static_cast<int>(moe_tp));
        cost.tp_bytes_per_gpu += moe_layers * 2.0 * (moe_tp - 1) / moe_tp * bytes;
      }
    }
  }
  if (c.pp > 1) {
    const double bytes = gemm_rows * hidden * act_bytes;
    cost.pp_bytes_per_hop = bytes;
    cost.pp_comm_s = (c.pp - 1) * c.pp_path.transfer_time_s(bytes);
  }
  const double prefill_tokens = tokens - static_cast<double>(b.decode_sequences);
  const double gpu_s = cost.gemm_s + cost.attention_s + cost.elementwise_s + cost.lm_head_s +
                       cost.tp_comm_s + cost.pp_comm_s + cost.ep_comm_s;
  const double host_s = c.iteration_overhead_s + c.host_per_sequence_s * rows +
                        c.host_per_prefill_token_s * prefill_tokens / adp;
  // Eagerly run iterations cannot finish before the host has launched every kernel.
  const double launch_s =
      c.cuda_graph_max_batch >= 0 && !graphed
          ? layers * DefaultEfficiency::kEagerKernelsPerLayer * DefaultEfficiency::kEagerLaunchS
          : 0.0;
  // Without overlap the host prepares the iteration, then launches it as the GPU runs:
  // host + max(GPU, launches). An overlap scheduler prepares the next iteration while this one
  // runs, so its one host thread needs host + launches per iteration: max(GPU, host + launches).
  cost.overhead_s = c.host_overlapped ? std::max(0.0, host_s + launch_s - gpu_s)
                                      : host_s + std::max(0.0, launch_s - gpu_s);

  // Offloaded KV crosses each GPU's own PCIe link (its shard: KV heads over TP, layers over
  // PP); PP stages run one after another, so their transfers add up.
  if (b.host_kv_tokens > 0 || b.offload_tokens > 0) {
    const double token_bytes =
        kv_bytes_per_token_per_gpu(m, c.precision.kv, c.tp, c.pp, c.moe.attention_dp);
    cost.host_to_gpu_bytes_per_gpu = b.host_kv_tokens * token_bytes;
    cost.gpu_to_host_bytes_per_gpu = b.offload_tokens * token_bytes;
    const double fetch_s = c.pp * c.host_path.transfer_time_s(cost.host_to_gpu_bytes_per_gpu);
    cost.kv_offload_s = c.pp * c.host_path.transfer_time_s(cost.gpu_to_host_bytes_per_gpu);
    const double layer_compute_s = cost.gemm_s + cost.attention_s + cost.elementwise_s;
    if (c.offload_fetch == OffloadFetch::kNaive) {
      cost.kv_fetch_s = fetch_s;  // copy everything back, then compute
    } else {
      // Layer pipeline: fetch layer 0, then fetch layer l+1 while layer l computes. With f and
      // g the per-layer fetch and compute: f + g + (L - 1) max(f, g), i.e.
      // max(F, G) + min(F, G) / L; the part beyond G is what the step waits.
      const double pipelined_s =
          std::max(fetch_s, layer_compute_s) + std::min(fetch_s, layer_compute_s) / layers;
      cost.kv_fetch_s = pipelined_s - layer_compute_s;
    }
  }
  cost.total_s = cost.gemm_s + cost.attention_s + cost.elementwise_s + cost.lm_head_s +
                 cost.tp_comm_s + cost.pp_comm_s + cost.overhead_s + cost.kv_fetch_s +
                 cost.kv_offload_s;
  if (cost.ep_comm_s > 0) cost.total_s += cost.ep_comm_s;
  return cost;
}

}  // namespace servesim

#include "models/cost_model.h"

#include <algorithm>
#include <cmath>

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

GemmParams gemm_params(const CostModelConfig& c) {
  const DType w = c.precision.weights;
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

double allreduce_time(const CostModelConfig& c, double bytes) {
  if (c.tp <= 1) return 0;
  if (c.kernel_db && c.tp_on_nvlink && c.kernel_db->has_allreduce(c.tp))
    return c.kernel_db->allreduce_time_s(c.tp, bytes);
  if (c.fit && c.tp_on_nvlink) {
    const int index = c.tp == 2 ? 1 : c.tp == 4 ? 2 : c.tp == 8 ? 3 : 0;
    if (index > 0 && c.fit->allreduce[index].bus_bandwidth_bytes_per_s > 0)
      return allreduce_time_s(c.fit->allreduce[index], bytes);
  }
  // Ring all-reduce: reduce-scatter then all-gather, 2(tp-1) steps of bytes/tp each.
  const double steps = 2.0 * (c.tp - 1);
  return steps * c.tp_path.latency_s + steps * (bytes / c.tp) / c.tp_path.bandwidth_bytes_per_s;
}

}  // namespace

int64_t cuda_graph_padded_batch(int64_t batch) {
  if (batch <= 4) return batch <= 2 ? batch : 4;
  if (batch <= 256) return ceil_div(batch, 8) * 8;
  return ceil_div(batch, 16) * 16;
}

void BatchShape::add_prefill(int64_t prefix_tokens, int64_t new_tokens, bool emits_token) {
  tokens += new_tokens;
  if (emits_token) ++logit_rows;
  // Query i of the chunk attends to the prefix and to the chunk's first i+1 tokens.
  const double n = static_cast<double>(new_tokens);
  prefill_attention_pairs += n * static_cast<double>(prefix_tokens) + n * (n + 1) / 2;
  prefill_prefix_tokens += static_cast<double>(prefix_tokens);
}

void BatchShape::add_decode(int64_t context_tokens) {
  tokens += 1;
  ++logit_rows;
  ++decode_sequences;
  decode_context_tokens += static_cast<double>(context_tokens);
  decode_context_sq_tokens +=
      static_cast<double>(context_tokens) * static_cast<double>(context_tokens);
}

double gemm_time(const CostModelConfig& c, double m, double n, double k) {
  if (m <= 0) return 0;
  if (c.kernel_db && c.kernel_db->supports_gemm(c.precision.weights, c.precision.activations))
    return c.kernel_db->gemm_time_s(m, n, k, c.precision.weights);
  const GemmParams p = gemm_params(c);
  // The fitted form of models/kernel_fit.h, with weights and activations counted at their own
  // widths so that weight-only formats (int4 weights, bf16 activations) are priced right.
  const double compute_s = 2.0 * n * k * (m + p.fit.m_half) * p.penalty /
                           (p.peak_flops_per_s * p.fit.compute_efficiency);
  const double bytes = n * k * bytes_per_element(c.precision.weights) +
                       (m * k + m * n) * bytes_per_element(c.precision.activations);
  const double memory_s = bytes / (c.gpu.hbm_bandwidth_bytes_per_s * p.fit.memory_efficiency);
  const double extra_pass_s = p.fit.extra_mk_bytes * m * k / c.gpu.hbm_bandwidth_bytes_per_s;
  return p.fit.overhead_s + std::max(compute_s, memory_s) + extra_pass_s;
}

double weight_bytes_per_gpu(const ModelSpec& m, DType weights, int tp, int pp) {
  const int64_t layers = ceil_div(m.num_layers, pp);
  // With PP the embedding sits on the first stage and the LM head on the last; with one
  // stage both (or the tied one) sit on every GPU's shard.
  const int64_t embeddings =
      pp == 1 ? m.embedding_params() * (m.tied_embeddings ? 1 : 2) : m.embedding_params();
  const double params = static_cast<double>(layers * m.params_per_layer() + embeddings) / tp;
  return params * bytes_per_element(weights);
}

double kv_bytes_per_token_per_gpu(const ModelSpec& m, DType kv, int tp, int pp) {
  const int64_t kv_heads = std::max<int64_t>(1, m.num_kv_heads / tp);
  const int64_t layers = ceil_div(m.num_layers, pp);
  return 2.0 * static_cast<double>(layers * kv_heads * m.head_dim) * bytes_per_element(kv);
}

double mfu_peak_flops_per_s(const CostModelConfig& c) {
  return gemm_params(c).peak_flops_per_s;
}

IterationCost price_iteration(const CostModelConfig& c, const BatchShape& b) {
  IterationCost cost;
  if (b.tokens <= 0) return cost;
  const ModelSpec& m = c.model;
  const double tp = c.tp;
  const double tokens = static_cast<double>(b.tokens);
  const double hidden = static_cast<double>(m.hidden_size);
  const double act_bytes = bytes_per_element(c.precision.activations);
  const double kv_elem_bytes = bytes_per_element(c.precision.kv);
  const double heads_per_gpu = static_cast<double>(m.num_heads) / tp;
  const double kv_heads_per_gpu = std::max(1.0, static_cast<double>(m.num_kv_heads) / tp);
  const double head_dim = static_cast<double>(m.head_dim);
  const double layers = static_cast<double>(m.num_layers);

  // Without a KV cache every step runs the whole context through the projections again.
  double gemm_rows =
      c.no_kv_cache ? b.decode_context_tokens + (tokens - static_cast<double>(b.decode_sequences))
                    : tokens;
  // A decode-only batch replays the CUDA graph of the next captured size, padding included.
  const bool decode_only = b.tokens == b.decode_sequences && !c.no_kv_cache;
  const bool graphed =
      c.cuda_graph_max_batch >= 0 && decode_only && b.decode_sequences <= c.cuda_graph_max_batch;
  if (graphed) gemm_rows = static_cast<double>(cuda_graph_padded_batch(b.decode_sequences));
  const double q = static_cast<double>(m.q_size()), kv = static_cast<double>(m.kv_size());
  const double ffn = static_cast<double>(m.ffn_hidden_size);
  const double per_layer_gemm = gemm_time(c, gemm_rows, (q + 2 * kv) / tp, hidden) +
                                gemm_time(c, gemm_rows, hidden, q / tp) +
                                gemm_time(c, gemm_rows, (m.gated_mlp ? 2 : 1) * ffn / tp, hidden) +
                                gemm_time(c, gemm_rows, hidden, ffn / tp);
  cost.gemm_s = layers * per_layer_gemm;
  const double w_bytes = bytes_per_element(c.precision.weights);
  {
    // Weight elements of the four GEMMs on one rank, and their k + n (activations in and out).
    const double up = (m.gated_mlp ? 2 : 1) * ffn / tp;
    const double weights = ((q + 2 * kv) / tp + q / tp + up + ffn / tp) * hidden;
    const double act_edges =
        ((q + 2 * kv) / tp + hidden) + (hidden + q / tp) + (hidden + up) + (ffn / tp + hidden);
    cost.layer_flops = layers * 2 * gemm_rows * weights;
    cost.layer_hbm_bytes = layers * (weights * w_bytes + gemm_rows * act_edges * act_bytes);
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
    } else if (c.kernel_db && c.kernel_db->supports_kv(c.precision.kv)) {
      // Measured per (batch, context): the mean context stands for each request's (decode
      // attention is close to linear in batch x context).
      const double batch = static_cast<double>(b.decode_sequences);
      per_layer_attention += c.kernel_db->decode_attention_time_s(
          batch, b.decode_context_tokens / batch, static_cast<int>(std::lround(heads_per_gpu)),
          static_cast<int>(std::lround(kv_heads_per_gpu)), static_cast<int>(m.head_dim),
          c.precision.kv);
    } else {
      const double kv_bytes =
          b.decode_context_tokens * 2 * kv_heads_per_gpu * head_dim * kv_elem_bytes;
      per_layer_attention +=
          decode_attention_time_s(attention, c.gpu.hbm_bandwidth_bytes_per_s,
                                  static_cast<double>(b.decode_sequences), kv_bytes);
    }
  }
  if (b.prefill_attention_pairs > 0) {
    const double flops = 4.0 * head_dim * heads_per_gpu * b.prefill_attention_pairs;
    const double prefix_bytes =
        b.prefill_prefix_tokens * 2 * kv_heads_per_gpu * head_dim * kv_elem_bytes;
    // Measured: one causal prompt with as many (query, key) pairs, isl (isl + 1) / 2.
    const double compute_s =
        c.kernel_db
            ? c.kernel_db->prefill_attention_time_s(
                  1, (std::sqrt(8 * b.prefill_attention_pairs + 1) - 1) / 2,
                  static_cast<int>(std::lround(heads_per_gpu)),
                  static_cast<int>(std::lround(kv_heads_per_gpu)), static_cast<int>(m.head_dim))
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
  const double row_bytes = gemm_rows * act_bytes;
  const double per_layer_elementwise = 2 * small_kernel_s(4 * hidden * row_bytes) +
                                       small_kernel_s(2 * (q + kv) / tp * row_bytes) +
                                       small_kernel_s(3 * ffn / tp * row_bytes);
  cost.elementwise_s = layers * per_layer_elementwise;
  cost.layer_hbm_bytes += layers * (2 * 4 * hidden + 2 * (q + kv) / tp + 3 * ffn / tp) * row_bytes;

  // Embedding gather, the vocabulary-parallel LM head and its logits gathered across TP, then
  // sampling over the fp32 logits of every row that emits a token.
  const double rows = static_cast<double>(b.logit_rows);
  const double vocab = static_cast<double>(m.vocab_size);
  cost.lm_head_s =
      small_kernel_s(gemm_rows * hidden * act_bytes) + gemm_time(c, rows, vocab / tp, hidden) +
      (c.tp > 1 && rows > 0 ? allreduce_time(c, rows * vocab * act_bytes) / 2 : 0) +
      (rows > 0 ? DefaultEfficiency::kSamplingPasses * small_kernel_s(rows * vocab * 4) : 0);
  cost.head_flops = 2 * rows * vocab / tp * hidden;
  cost.head_hbm_bytes = gemm_rows * hidden * act_bytes +
                        (rows > 0 ? vocab / tp * hidden * w_bytes : 0) +
                        rows * (hidden + vocab / tp) * act_bytes +
                        DefaultEfficiency::kSamplingPasses * rows * vocab * 4;

  if (c.tp > 1) {
    const double bytes = gemm_rows * hidden * act_bytes;
    cost.tp_comm_s = 2 * layers * allreduce_time(c, bytes);
    cost.tp_bytes_per_gpu = 2 * layers * 2.0 * (tp - 1) / tp * bytes;
  }
  if (c.pp > 1) {
    const double bytes = gemm_rows * hidden * act_bytes;
    cost.pp_bytes_per_hop = bytes;
    cost.pp_comm_s = (c.pp - 1) * c.pp_path.transfer_time_s(bytes);
  }
  const double prefill_tokens = tokens - static_cast<double>(b.decode_sequences);
  cost.overhead_s = c.iteration_overhead_s + c.host_per_sequence_s * rows +
                    c.host_per_prefill_token_s * prefill_tokens;
  // Eagerly run iterations cannot finish before the host has launched every kernel.
  if (c.cuda_graph_max_batch >= 0 && !graphed) {
    const double gpu_s = cost.gemm_s + cost.attention_s + cost.elementwise_s + cost.lm_head_s +
                         cost.tp_comm_s + cost.pp_comm_s;
    const double launch_s =
        layers * DefaultEfficiency::kEagerKernelsPerLayer * DefaultEfficiency::kEagerLaunchS;
    cost.overhead_s += std::max(0.0, launch_s - gpu_s);
  }

  // Offloaded KV crosses each GPU's own PCIe link (its shard: KV heads over TP, layers over
  // PP); PP stages run one after another, so their transfers add up.
  if (b.host_kv_tokens > 0 || b.offload_tokens > 0) {
    const double token_bytes = kv_bytes_per_token_per_gpu(m, c.precision.kv, c.tp, c.pp);
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
  return cost;
}

}  // namespace servesim

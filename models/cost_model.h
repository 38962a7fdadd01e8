#pragma once
/// Prices one iteration of a replica: a pure function of (hardware, model, placement, batch
/// shape), so each term can be checked by hand.
///
/// Per transformer layer and GPU (TP shards heads and FFN columns):
///   GEMMs   qkv, o, gate+up, down: time = overhead + max(flops / rate, bytes / bandwidth)
///   attention  decode: KV bytes read / bandwidth (linear in context by construction);
///              prefill: causal (query, key) pairs x 4 x head_dim x heads / rate
///   elementwise  fused add-norms, rotary, activation: max(launch floor, bytes / bandwidth) each
///   TP          two all-reduces of tokens x hidden activations
/// plus the embedding gather, the LM head, the logits gather across TP and sampling for the rows
/// that emit a token, PP activation sends between stages, and the engine's host time (fixed,
/// per sequence, per prefill token; eager iterations no faster than their kernel launches).
/// With a fitted kernel table for the GPU (models/kernel_fit.h) the efficiencies and overheads
/// are the measured ones.
///
/// MoE layers replace the MLP by a router GEMM, the shared experts (a dense MLP) and two grouped
/// GEMMs over the routed experts of the busiest expert-parallel group: compute at the per-expert
/// token counts, and the weights of every expert that receives a token read from HBM (why
/// small batches are memory-bound). With EP the tokens are dispatched to and combined from the
/// experts' GPUs by two all-to-alls per layer (one copy of a token per destination GPU in its
/// node and per other node), priced on the replica's links: NVLink (or PCIe) to peers in the
/// node, each GPU's path to the NIC and the node's network link, shared by its GPUs, beyond.
/// MLA attention reads the compressed latent (kv_lora_rank + rope dims) per token and layer;
/// decode runs in the absorbed form (per head: scores over latent + rope, output in the latent),
/// prefill in the expanded form (per head: qk of head_dim + rope, v of v_head_dim).

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "models/cluster.h"
#include "models/dtype.h"
#include "models/gpu.h"
#include "models/kernel_db.h"
#include "models/kernel_fit.h"
#include "models/kv_cache.h"
#include "models/llm.h"

namespace servesim {

struct Precision {
  DType weights = DType::kBf16;
  DType kv = DType::kBf16;
  DType activations = DType::kBf16;
  /// Routed and shared experts of an MoE model; unset: the weights' format.
  std::optional<DType> experts = std::nullopt;
  DType expert_weights() const { return experts.value_or(weights); }
};

/// How the tp GPUs of a replica (per PP stage) split an MoE model, in the engines' terms:
/// attention runs in attention_dp data-parallel groups of tp / attention_dp GPUs (heads sharded
/// inside a group, each group holding its own requests' KV); the routed experts are split over
/// ep groups of tp / ep GPUs (each group holds num_experts / ep experts, whose columns are
/// sharded over its GPUs). Dense models: both 1.
struct MoeLayout {
  int ep = 1;
  int attention_dp = 1;
};

/// How routed tokens spread over the experts. Experts are placed on EP groups in id order
/// (expert e on group e / (num_experts / ep)), as the engines place them without a load
/// balancer. Zipf: the expert of id r (from 0) draws a share proportional to (r + 1)^-exponent,
/// so the most popular experts share a group: the imbalance without expert rebalancing.
/// Measured: a relative load per expert, in id order.
struct ExpertSkew {
  enum class Kind { kUniform, kZipf, kMeasured };
  Kind kind = Kind::kUniform;
  double zipf_exponent = 0;
  std::vector<double> loads;
};

/// The per-expert shares (summing to the group's share of all routed tokens) of the EP group
/// that receives the most routed tokens.
std::vector<double> busiest_group_shares(const ExpertSkew& skew, int64_t num_experts, int ep);

/// Efficiencies used when no fitted kernel table exists for a GPU: the medians over the
/// fitted A100, H100 and H200 tables (models/kernel_fit.cc, models/kernel_fit_report.md), so an
/// uncalibrated GPU is priced like a typical calibrated one rather than at an unreachable peak.
struct DefaultEfficiency {
  static constexpr double kGemmCompute = 0.778;
  static constexpr double kGemmMemory = 0.80;
  static constexpr double kGemmMHalf = 45.4;
  static constexpr double kGemmOverheadS = 3.9e-6;
  static constexpr double kDecodeAttentionMemory = 0.747;
  static constexpr double kDecodeAttentionOverheadS = 9.4e-6;
  static constexpr double kDecodeAttentionPerRequestS = 4.2e-8;
  static constexpr double kPrefillAttentionCompute = 0.506;
  static constexpr double kPrefillAttentionOverheadS = 1.34e-5;
  /// Launch floor of each memory-bound elementwise kernel (norm, rotary, activation), of the
  /// embedding gather and of the sampling kernels: a kernel moving a few KB still takes this long
  /// on Hopper (the smallest decode-attention and GEMM overheads fitted in
  /// models/kernel_fit.cc are 4-9 us; elementwise kernels are simpler).
  static constexpr double kSmallKernelFloorS = 2.5e-6;
  /// Elementwise kernels per layer in engines that fuse residual add into RMSNorm: two fused
  /// add-norms, rotary, SiLU-and-mul.
  static constexpr double kElementwiseKernelsPerLayer = 4;
  /// Kernels per layer an eager (not graph-replayed) forward launches, and the host time of one
  /// launch through PyTorch (~5 us each, the usual figure for torch op dispatch + cudaLaunch).
  static constexpr double kEagerKernelsPerLayer = 12;
  static constexpr double kEagerLaunchS = 5e-6;
  /// Passes over the fp32 logits of each sampled row: softmax, top-k/top-p filter, draw.
  static constexpr double kSamplingPasses = 3;
  /// Weight-only formats without tensor-core support run the bf16 GEMM after an in-kernel
  /// dequantization; Marlin-style kernels lose roughly this fraction of the bf16 rate.
  static constexpr double kDequantComputePenalty = 1.15;
};

/// An engine's own FP8 GEMM kernels where they differ from those the fitted tables measured
/// (vLLM's): the achieved HBM fraction of weight-bound GEMMs (0 = the fit's) and a factor on the
/// fit's m_half (how fast the rate rises with the token count).
struct EngineGemmAdjustment {
  double memory_efficiency = 0;
  double m_half_factor = 1;
};

struct CostModelConfig {
  GpuSpec gpu;
  const GpuKernelFit* fit = nullptr;  ///< nullptr: roofline with DefaultEfficiency
  /// Measured kernel tables (`--kernel-db`): when set, GEMM (bf16/fp8 weights), attention and
  /// NVLink all-reduce times are interpolated from them instead; the rest keeps `fit`.
  const KernelDb* kernel_db = nullptr;
  ModelSpec model;
  Precision precision;
  int tp = 1;
  int pp = 1;
  /// The slowest hop of the TP ring and of the PP chain (empty when tp or pp is 1).
  Path tp_path;
  Path pp_path;
  /// TP peers share one node with NVLink: the fitted all-reduce table applies.
  bool tp_on_nvlink = false;
  MoeLayout moe;
  /// Per-expert token shares of the busiest EP group (busiest_group_shares); empty: uniform.
  std::vector<double> hot_group_expert_shares;
  /// EP all-to-all: the slowest path to a peer in the same node and to one in another node
  /// (empty when there is none), and the replica's GPUs per node (they share its NIC).
  Path ep_intra_path;
  Path ep_inter_path;
  int ep_gpus_per_node = 1;
  /// Of ep_inter_path: the slowest link a GPU has to itself (its PCIe path to the NIC) and the
  /// slowest one its node's GPUs share (the network); 0: the path's bandwidth for both.
  double ep_inter_own_bytes_per_s = 0;
  double ep_inter_shared_bytes_per_s = 0;
  double iteration_overhead_s = 0;
  /// Host time that grows with the batch: per running sequence (input preparation, sampling
  /// hand-off, detokenisation) and per prefill token (tokens copied, positions and slot
  /// mappings built).
  double host_per_sequence_s = 0;
  double host_per_prefill_token_s = 0;
  /// The engine prepares the next iteration while the GPU runs this one (an overlap
  /// scheduler): host time only shows where it exceeds the GPU's.
  bool host_overlapped = false;
  EngineGemmAdjustment engine_fp8_gemm;
  /// Largest decode-only batch replayed from a CUDA graph: smaller ones are padded to the next
  /// captured size; larger ones, and iterations with prefill, launch every kernel from the host
  /// (DefaultEfficiency::kEagerLaunchS each). -1: neither modelled.
  int64_t cuda_graph_max_batch = -1;
  /// Recompute every token's K and V each step instead of reading a cache (seed Q8): each
  /// decode step runs the whole context through every projection and causal attention, as a
  /// prefill of the context would (Atharva's model in Q8).
  bool no_kv_cache = false;
  /// The GPU's PCIe path to host memory and how offloaded KV comes back (seed Q10).
  Path host_path;
  OffloadFetch offload_fetch = OffloadFetch::kNaive;
};

/// What one iteration processes, reduced to the sums the cost depends on.
struct BatchShape {
  int64_t sequences = 0;   ///< requests in the iteration (prefill chunks and decodes)
  int64_t tokens = 0;      ///< new tokens through the GEMMs (prefill chunks + one per decode)
  int64_t logit_rows = 0;  ///< requests that emit a token (LM head rows)
  int64_t decode_sequences = 0;
  double decode_context_tokens = 0;     ///< sum of contexts the decoding requests attend over
  double prefill_attention_pairs = 0;   ///< sum over prefill chunks of causal (query, key) pairs
  double prefill_prefix_tokens = 0;     ///< cached keys that prefill chunks read back
  double decode_context_sq_tokens = 0;  ///< sum of squared decode contexts (no-KV-cache attention)
  /// KV tokens that live in host memory and must cross PCIe for this step's attention, and KV
  /// tokens moved GPU -> host before it (offload).
  double host_kv_tokens = 0;
  double offload_tokens = 0;
  /// The largest prefill chunk, its (query, key) pairs and cached prefix: a chunk runs on one
  /// attention-DP group, which the others wait for.
  int64_t max_chunk_tokens = 0;
  double max_chunk_pairs = 0;
  double max_chunk_prefix_tokens = 0;

  /// Adds a prefill chunk of `new_tokens` after `prefix_tokens` already in the cache.
  void add_prefill(int64_t prefix_tokens, int64_t new_tokens, bool emits_token);
  /// Adds one decode step attending over `context_tokens` (including the new token).
  void add_decode(int64_t context_tokens);
  /// One of `parts` equal micro-batches of this batch (counts rounded up: the largest part);
  /// the largest chunk stays whole.
  BatchShape micro_batch(int64_t parts) const;
};

struct IterationCost {
  double total_s = 0;
  double gemm_s = 0;
  double attention_s = 0;
  double elementwise_s = 0;
  double lm_head_s = 0;  ///< embedding gather, LM head GEMM and sampling over the vocabulary
  double tp_comm_s = 0;
  double pp_comm_s = 0;
  double expert_gemm_s = 0;  ///< grouped GEMMs of the routed experts (also in gemm_s)
  double ep_comm_s = 0;      ///< EP dispatch and combine all-to-alls
  double overhead_s = 0;
  /// Time the step waits on PCIe beyond its compute: the fetch of offloaded KV not hidden behind
  /// compute, and the offload writes.
  double kv_fetch_s = 0;
  double kv_offload_s = 0;
  /// Bytes each GPU reads from and writes to host memory over its PCIe link.
  double host_to_gpu_bytes_per_gpu = 0;
  double gpu_to_host_bytes_per_gpu = 0;
  /// Bytes each GPU sends to its TP ring neighbour, and bytes each PP stage sends onward.
  double tp_bytes_per_gpu = 0;
  double pp_bytes_per_hop = 0;
  /// Work of the priced kernels on one TP rank, for MFU and MBU: the transformer layers' flops
  /// and HBM bytes summed over every layer (a PP stage does its layers' share), and those of the
  /// embedding gather, LM head and sampling (the last stage's). GEMMs count the rows they run
  /// (CUDA-graph padding included), as the time does.
  double layer_flops = 0;
  double layer_hbm_bytes = 0;
  double head_flops = 0;
  double head_hbm_bytes = 0;
  /// What layer_flops and layer_hbm_bytes gain at each later step of a closed-form decode
  /// stretch, where every decoding request attends over one more token.
  double layer_flops_step_growth = 0;
  double layer_hbm_bytes_step_growth = 0;
  /// Bytes each GPU sends in the EP all-to-alls, to peers in its node and to other nodes.
  double ep_intra_bytes_per_gpu = 0;
  double ep_inter_bytes_per_gpu = 0;
  /// PP micro-batches the iteration ran as (Instance::price): the times are one
  /// micro-batch's way through every stage, the work and bytes those of all of them.
  int64_t microbatches = 1;
  /// Multiplies the work and bytes (not the times) by `parts`.
  void scale_work(int64_t parts);
};

/// The share of a model's `num_layers` that PP stage `stage` of `pp` holds: stages hold
/// consecutive layers, dealt as evenly as they go, the first (num_layers mod pp) one more.
double stage_layer_share(int64_t num_layers, int pp, int stage);

/// The peak rate MFU is measured against: that of the GEMMs' input format on this GPU.
double mfu_peak_flops_per_s(const CostModelConfig& c);

/// The captured CUDA-graph batch a decode batch of `batch` is padded to: 1, 2, 4, multiples of 8
/// to 256, then of 16 (vLLM's capture list, vllm/config/compilation.py; SGLang's and
/// TensorRT-LLM's lists are close to it).
int64_t cuda_graph_padded_batch(int64_t batch);
/// The cost of one GEMM of shape (m x k) . (k x n) on this configuration.
double gemm_time(const CostModelConfig& c, double m, double n, double k);
/// Times price_iteration may reuse between calls on one configuration (the caller clears it
/// when the configuration changes). They depend on a row count alone: the layers' GEMMs and
/// all-reduce on the token rows through an attention group, the LM head's GEMM and logits'
/// gather on the rows that emit a token. Each is kept in a slot chosen by its row count (a
/// direct-mapped table), so the row counts a replica keeps coming back to (its decode batches
/// as they grow and shrink, with and without a prefill chunk) are priced once.
struct GemmTimeCache {
  static constexpr size_t kSlots = 256;
  struct Layers {
    double rows = -1;  ///< -1: empty
    double attention_gemm_s = 0;
    double per_layer_gemm_s = 0;
    double allreduce_s = 0;  ///< one all-reduce of the rows' hidden states (0 without TP)
  };
  struct Head {
    double rows = -1;  ///< -1: empty
    double gemm_s = 0;
    double allreduce_s = 0;  ///< the logits' gather, before halving (0 without TP)
  };
  std::array<Layers, kSlots> layers;
  std::array<Head, kSlots> heads;
  /// The all-reduce segments last interpolated when a slot is filled, one for the layers and
  /// one for the logits' gather (message sizes far apart, so each keeps its own).
  AllReduceSegmentLogs layer_allreduce;
  AllReduceSegmentLogs head_allreduce;

  static size_t slot(double rows) { return static_cast<size_t>(rows) % kSlots; }
};
IterationCost price_iteration(const CostModelConfig& c, const BatchShape& batch,
                              GemmTimeCache* cache = nullptr);

/// Weight bytes held by the most loaded GPU of a tp x pp replica: attention, dense MLPs, shared
/// experts, routers and embeddings sharded over an attention group (tp / attention_dp GPUs),
/// routed experts over all tp GPUs.
double weight_bytes_per_gpu(const ModelSpec& m, DType weights, int tp, int pp,
                            const MoeLayout& moe = {},
                            std::optional<DType> expert_weights = std::nullopt);
/// KV bytes one token occupies on each GPU of a tp x pp replica, on average: KV heads are split
/// across the attention group and replicated when it exceeds their number (MLA's latent is
/// replicated on every GPU of the group); layers are split across PP. With attention_dp groups
/// each holds its own requests, so a token costs 1 / attention_dp of that per GPU of the
/// replica (groups assumed evenly loaded).
double kv_bytes_per_token_per_gpu(const ModelSpec& m, DType kv, int tp, int pp,
                                  int attention_dp = 1);

}  // namespace servesim

#pragma once
/// LLM architectures: exact shapes of decoder-only transformers, and the byte counts that
/// follow from them. Dense models, mixture-of-experts models (routed and shared experts, dense
/// layers before the MoE layers) and multi-head latent attention (MLA: a compressed KV latent
/// per token instead of per-head K and V) share one spec; the MoE and MLA fields are zero in a
/// dense model with ordinary attention.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "models/dtype.h"

namespace servesim {

struct ModelSpec {
  std::string name;
  int64_t num_layers = 0;
  int64_t hidden_size = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t ffn_hidden_size = 0;
  int64_t vocab_size = 0;
  bool tied_embeddings = false;
  bool gated_mlp = true;  ///< SwiGLU: three FFN matrices instead of two

  // Mixture of experts (num_experts 0: dense). The first dense_layers layers keep a dense MLP
  // of ffn_hidden_size; each later layer routes every token to experts_per_token of
  // num_experts experts of width expert_ffn_hidden_size, beside shared_experts experts of the
  // same width that every token passes through.
  int64_t num_experts = 0;
  int64_t experts_per_token = 0;
  int64_t shared_experts = 0;
  int64_t expert_ffn_hidden_size = 0;
  int64_t dense_layers = 0;

  // Multi-head latent attention (kv_lora_rank 0: none). K and V are expanded from a cached
  // latent of kv_lora_rank plus a shared rotary key of qk_rope_head_dim; head_dim is the
  // non-rotary part of each query/key head, v_head_dim the value head; q_lora_rank 0 projects
  // queries directly from the hidden state.
  int64_t q_lora_rank = 0;
  int64_t kv_lora_rank = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;

  bool moe() const { return num_experts > 0; }
  bool mla() const { return kv_lora_rank > 0; }
  int64_t moe_layers() const { return moe() ? num_layers - dense_layers : 0; }
  /// Query (and key) width: heads x (head_dim + rotary part under MLA).
  int64_t q_size() const { return num_heads * (head_dim + qk_rope_head_dim); }
  /// Per-head K or V width of the cache without MLA.
  int64_t kv_size() const { return num_kv_heads * head_dim; }
  /// Width of the attention output that o_proj reads.
  int64_t attention_out_size() const { return num_heads * (mla() ? v_head_dim : head_dim); }
  /// Attention projections of one layer (and MLA's two latent norms).
  int64_t attention_params() const;
  /// One dense MLP of ffn_hidden_size.
  int64_t dense_mlp_params() const { return (gated_mlp ? 3 : 2) * hidden_size * ffn_hidden_size; }
  /// One expert of expert_ffn_hidden_size.
  int64_t expert_params() const {
    return (gated_mlp ? 3 : 2) * hidden_size * expert_ffn_hidden_size;
  }
  int64_t router_params() const { return hidden_size * num_experts; }
  /// Weights of one dense layer (attention projections, MLP, two norms).
  int64_t params_per_layer() const;
  /// Weights of one MoE layer: attention, every routed and shared expert, the router, norms.
  int64_t params_per_moe_layer() const;
  int64_t embedding_params() const { return vocab_size * hidden_size; }
  int64_t total_params() const;
  /// Weights one token's forward pass multiplies by: every layer's attention, the dense MLPs,
  /// the routed experts it is sent to and the shared ones, routers, norms and the LM head. The
  /// input embedding is a row lookup and is not counted, as model cards count "activated
  /// parameters" (DeepSeek-V3: 36.6B activated including the 0.9B output head).
  int64_t active_params_per_token() const;
  double weight_bytes(DType weight_dtype) const {
    return static_cast<double>(total_params()) * bytes_per_element(weight_dtype);
  }
  /// Cache width of one token in one layer, in elements: K and V of every KV head, or MLA's
  /// latent plus its rotary key.
  int64_t kv_elements_per_token_per_layer() const {
    return mla() ? kv_lora_rank + qk_rope_head_dim : 2 * kv_size();
  }
  /// The KV cache of every layer for one token.
  double kv_bytes_per_token(DType kv_dtype) const {
    return static_cast<double>(num_layers * kv_elements_per_token_per_layer()) *
           bytes_per_element(kv_dtype);
  }
};

const std::vector<ModelSpec>& model_catalogue();
const ModelSpec* find_model(std::string_view name);

}  // namespace servesim

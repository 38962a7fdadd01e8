#include "models/llm.h"

namespace servesim {

int64_t ModelSpec::attention_params() const {
  const int64_t o = attention_out_size() * hidden_size;
  if (!mla()) {
    return hidden_size * q_size()         // q
           + 2 * hidden_size * kv_size()  // k, v
           + o;
  }
  // DeepSeek-V3's MLA: q_a (+ norm) and q_b, or one q projection; kv_a to the latent and the
  // rotary key (+ the latent's norm); kv_b expanding the latent to per-head K (non-rotary part)
  // and V; o.
  const int64_t q = q_lora_rank > 0
                        ? hidden_size * q_lora_rank + q_lora_rank + q_lora_rank * q_size()
                        : hidden_size * q_size();
  const int64_t kv_a = hidden_size * (kv_lora_rank + qk_rope_head_dim) + kv_lora_rank;
  const int64_t kv_b = kv_lora_rank * num_heads * (head_dim + v_head_dim);
  return q + kv_a + kv_b + o;
}

int64_t ModelSpec::params_per_layer() const {
  return attention_params() + dense_mlp_params() + 2 * hidden_size;
}

int64_t ModelSpec::params_per_moe_layer() const {
  return attention_params() + (num_experts + shared_experts) * expert_params() + router_params() +
         2 * hidden_size;
}

int64_t ModelSpec::total_params() const {
  const int64_t embeddings = embedding_params() * (tied_embeddings ? 1 : 2);
  return (num_layers - moe_layers()) * params_per_layer() + moe_layers() * params_per_moe_layer() +
         embeddings + hidden_size;  // + final norm
}

int64_t ModelSpec::active_params_per_token() const {
  const int64_t moe_layer = attention_params() +
                            (experts_per_token + shared_experts) * expert_params() +
                            router_params() + 2 * hidden_size;
  return (num_layers - moe_layers()) * params_per_layer() + moe_layers() * moe_layer +
         embedding_params() + hidden_size;  // LM head (the tied table too) + final norm
}

namespace {

struct MoeShape {
  int64_t num_experts, experts_per_token, shared_experts, expert_ffn_hidden_size, dense_layers;
};
struct MlaShape {
  int64_t q_lora_rank, kv_lora_rank, qk_rope_head_dim, v_head_dim;
};

ModelSpec with_moe(ModelSpec m, MoeShape e, MlaShape a = {}) {
  m.num_experts = e.num_experts;
  m.experts_per_token = e.experts_per_token;
  m.shared_experts = e.shared_experts;
  m.expert_ffn_hidden_size = e.expert_ffn_hidden_size;
  m.dense_layers = e.dense_layers;
  m.q_lora_rank = a.q_lora_rank;
  m.kv_lora_rank = a.kv_lora_rank;
  m.qk_rope_head_dim = a.qk_rope_head_dim;
  m.v_head_dim = a.v_head_dim;
  return m;
}

}  // namespace

// Shapes from each model's published config.json (Hugging Face model cards): num_hidden_layers,
// hidden_size, num_attention_heads, num_key_value_heads, head_dim, intermediate_size,
// vocab_size, tie_word_embeddings.
const std::vector<ModelSpec>& model_catalogue() {
  static const std::vector<ModelSpec> catalogue = {
      // name, layers, hidden, heads, kv heads, head dim, ffn, vocab, tied
      {"Llama-3.2-1B", 16, 2048, 32, 8, 64, 8192, 128256, true},
      {"Llama-3.2-3B", 28, 3072, 24, 8, 128, 8192, 128256, true},
      {"Llama-2-7B", 32, 4096, 32, 32, 128, 11008, 32000, false},
      {"Llama-2-13B", 40, 5120, 40, 40, 128, 13824, 32000, false},
      {"Llama-3-8B", 32, 4096, 32, 8, 128, 14336, 128256, false},
      {"Llama-3.1-8B", 32, 4096, 32, 8, 128, 14336, 128256, false},
      {"Qwen3-8B", 36, 4096, 32, 8, 128, 12288, 151936, false},
      {"Qwen3-32B", 64, 5120, 64, 8, 128, 25600, 151936, false},
      {"Llama-2-70B", 80, 8192, 64, 8, 128, 28672, 32000, false},
      {"Llama-3-70B", 80, 8192, 64, 8, 128, 28672, 128256, false},
      {"Llama-3.1-70B", 80, 8192, 64, 8, 128, 28672, 128256, false},
      // Non-gated (GELU) MLPs: two FFN matrices.
      {"GPT-J-6B", 28, 4096, 16, 16, 256, 16384, 50400, false, false},
      {"Falcon-180B", 80, 14848, 232, 8, 64, 59392, 65024, false, false},
      {"BLOOM-176B", 70, 14336, 112, 112, 128, 57344, 250880, true, false},
      // Mixture-of-experts models. MoE fields: n_routed_experts / num_experts /
      // num_local_experts, num_experts_per_tok, n_shared_experts, moe_intermediate_size (or
      // the experts' intermediate_size), first_k_dense_replace; MLA fields: q_lora_rank,
      // kv_lora_rank, qk_rope_head_dim, v_head_dim, with head_dim = qk_nope_head_dim.
      // huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json (DeepSeek-R1's is the
      // same shape); num_key_value_heads 128 is the expanded heads, the cache holds the latent.
      with_moe({"DeepSeek-V3", 61, 7168, 128, 128, 128, 18432, 129280, false}, {256, 8, 1, 2048, 3},
               {1536, 512, 64, 128}),
      with_moe({"DeepSeek-R1", 61, 7168, 128, 128, 128, 18432, 129280, false}, {256, 8, 1, 2048, 3},
               {1536, 512, 64, 128}),
      // huggingface.co/moonshotai/Kimi-K2-Instruct/blob/main/config.json (DeepSeek-V3's
      // architecture with 64 heads, 384 experts and one dense layer).
      with_moe({"Kimi-K2", 61, 7168, 64, 64, 128, 18432, 163840, false}, {384, 8, 1, 2048, 1},
               {1536, 512, 64, 128}),
      // huggingface.co/Qwen/Qwen3-235B-A22B/blob/main/config.json (intermediate_size 12288 is
      // unused: every layer is MoE, mlp_only_layers []).
      with_moe({"Qwen3-235B-A22B", 94, 4096, 64, 4, 128, 12288, 151936, false},
               {128, 8, 0, 1536, 0}),
      // huggingface.co/openai/gpt-oss-120b/blob/main/config.json: experts of intermediate_size
      // 2880. Not modelled: its biases (q/k/v/o and expert biases, 0.03% of the weights), the
      // attention sinks, and the 128-token sliding window of every other layer (those layers
      // are priced and cached as full attention: KV and decode attention over-estimated).
      with_moe({"gpt-oss-120b", 36, 2880, 64, 8, 64, 2880, 201088, false}, {128, 4, 0, 2880, 0}),
      // huggingface.co/MiniMaxAI/MiniMax-M2/blob/main/config.json (MiniMax-M2.5 has the same
      // shape): intermediate_size 1536 is the experts' width; shared_intermediate_size 0.
      with_moe({"MiniMax-M2", 62, 3072, 48, 8, 128, 1536, 200064, false}, {256, 8, 0, 1536, 0}),
  };
  return catalogue;
}

const ModelSpec* find_model(std::string_view name) {
  for (const auto& m : model_catalogue())
    if (m.name == name) return &m;
  return nullptr;
}

}  // namespace servesim

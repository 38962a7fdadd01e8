#include "models/llm.h"

namespace servesim {

int64_t ModelSpec::params_per_layer() const {
  const int64_t attention = hidden_size * q_size()         // q
                            + 2 * hidden_size * kv_size()  // k, v
                            + q_size() * hidden_size;      // o
  const int64_t mlp = (gated_mlp ? 3 : 2) * hidden_size * ffn_hidden_size;
  return attention + mlp + 2 * hidden_size;
}

int64_t ModelSpec::total_params() const {
  const int64_t embeddings = embedding_params() * (tied_embeddings ? 1 : 2);
  return num_layers * params_per_layer() + embeddings + hidden_size;  // + final norm
}

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
  };
  return catalogue;
}

const ModelSpec* find_model(std::string_view name) {
  for (const auto& m : model_catalogue())
    if (m.name == name) return &m;
  return nullptr;
}

}  // namespace servesim

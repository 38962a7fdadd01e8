#pragma once
/// LLM architectures: exact shapes of decoder-only transformers, and the byte counts that
/// follow from them.

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

  int64_t q_size() const { return num_heads * head_dim; }
  int64_t kv_size() const { return num_kv_heads * head_dim; }
  /// Weights of one transformer layer (attention projections, MLP, two norms).
  int64_t params_per_layer() const;
  int64_t embedding_params() const { return vocab_size * hidden_size; }
  int64_t total_params() const;
  double weight_bytes(DType weight_dtype) const {
    return static_cast<double>(total_params()) * bytes_per_element(weight_dtype);
  }
  /// K and V of every layer for one token.
  double kv_bytes_per_token(DType kv_dtype) const {
    return 2.0 * static_cast<double>(num_layers * kv_size()) * bytes_per_element(kv_dtype);
  }
};

const std::vector<ModelSpec>& model_catalogue();
const ModelSpec* find_model(std::string_view name);

}  // namespace servesim

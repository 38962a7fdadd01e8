#include "tools/model_import.h"

#include <fmt/format.h>

#include "run/scenario_cluster.h"
#include "sim/error.h"
#include "sim/json_reader.h"

namespace servesim {
namespace {

constexpr const char* kFamilies =
    "llama, mistral, qwen2, qwen3, qwen2_moe, qwen3_moe, mixtral, deepseek_v2, deepseek_v3, "
    "kimi_k2, gpt_oss, minimax_m2";

/// Reads keys of one config object, naming the file and JSON pointer in errors.
class Config {
 public:
  Config(const nlohmann::json& j, std::string file, std::string pointer)
      : j_(j), file_(std::move(file)), pointer_(std::move(pointer)) {}
  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  [[noreturn]] void fail(const char* key, std::string_view message) const {
    throw InputError(fmt::format("{}: {}/{}: {}", file_, pointer_, key, message));
  }
  int64_t integer(const char* key) const {
    if (!has(key)) throw InputError(fmt::format("{}: {}: missing key '{}'", file_, where(), key));
    const auto& v = j_.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < 0) fail(key, "expected an integer >= 0");
    return v.get<int64_t>();
  }
  int64_t integer_or(const char* key, int64_t fallback) const {
    return has(key) ? integer(key) : fallback;
  }
  bool boolean_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j_.at(key).is_boolean()) fail(key, "expected true or false");
    return j_.at(key).get<bool>();
  }
  std::string text_or(const char* key, std::string fallback) const {
    if (!has(key)) return fallback;
    if (!j_.at(key).is_string()) fail(key, "expected a string");
    return j_.at(key).get<std::string>();
  }
  const nlohmann::json& raw(const char* key) const { return j_.at(key); }
  std::string where() const { return pointer_.empty() ? "/" : pointer_; }

 private:
  const nlohmann::json& j_;
  std::string file_;
  std::string pointer_;
};

}  // namespace

ImportedModel import_hf_config(const nlohmann::json& root, const std::string& file,
                               const std::string& name) {
  if (!root.is_object()) throw InputError(fmt::format("{}: /: expected a JSON object", file));
  // Multimodal wrappers (Kimi-K2.5, Qwen-VL...) keep the language model in text_config.
  const bool wrapped = root.contains("text_config") && root.at("text_config").is_object();
  const Config c(wrapped ? root.at("text_config") : root, file, wrapped ? "/text_config" : "");
  const std::string type = c.text_or("model_type", "");
  const bool llama_like =
      type == "llama" || type == "mistral" || type == "qwen2" || type == "qwen3";
  const bool qwen_moe = type == "qwen2_moe" || type == "qwen3_moe";
  const bool deepseek = type == "deepseek_v2" || type == "deepseek_v3" || type == "kimi_k2";
  const bool known = llama_like || qwen_moe || deepseek || type == "mixtral" || type == "gpt_oss" ||
                     type == "minimax_m2";
  if (!known)
    throw InputError(fmt::format("{}: {}/model_type: unsupported model type '{}'; valid: {}", file,
                                 c.where() == "/" ? "" : c.where(), type, kFamilies));
  ImportedModel out;
  auto& m = out.model;
  m["name"] = name;
  m["num_layers"] = c.integer("num_hidden_layers");
  m["hidden_size"] = c.integer("hidden_size");
  const int64_t heads = c.integer("num_attention_heads");
  m["num_heads"] = heads;
  m["num_kv_heads"] = c.integer_or("num_key_value_heads", heads);
  if (deepseek) {
    // MLA: the cache holds the latent; head_dim is the non-rotary query/key part.
    m["head_dim"] = c.integer("qk_nope_head_dim");
    m["kv_lora_rank"] = c.integer("kv_lora_rank");
    m["qk_rope_head_dim"] = c.integer("qk_rope_head_dim");
    m["v_head_dim"] = c.integer("v_head_dim");
    if (c.integer_or("q_lora_rank", 0) > 0) m["q_lora_rank"] = c.integer("q_lora_rank");
  } else {
    m["head_dim"] = c.integer_or("head_dim", c.integer("hidden_size") / heads);
  }
  m["ffn_hidden_size"] = c.integer("intermediate_size");
  m["vocab_size"] = c.integer("vocab_size");
  m["tied_embeddings"] = c.boolean_or("tie_word_embeddings", false);
  // Every supported family uses a gated (SwiGLU-style) MLP.
  m["gated_mlp"] = true;

  if (qwen_moe) {
    if (c.has("mlp_only_layers") && !c.raw("mlp_only_layers").empty())
      c.fail("mlp_only_layers", "dense layers between MoE layers are not modelled");
    if (c.integer_or("decoder_sparse_step", 1) != 1)
      c.fail("decoder_sparse_step", "MoE on every other layer is not modelled");
    m["num_experts"] = c.integer("num_experts");
    m["experts_per_token"] = c.integer("num_experts_per_tok");
    m["expert_ffn_hidden_size"] = c.integer("moe_intermediate_size");
    // Qwen2-MoE's shared expert is one wide MLP: as many expert-width experts when it divides.
    const int64_t shared = c.integer_or("shared_expert_intermediate_size", 0);
    const int64_t width = c.integer("moe_intermediate_size");
    if (shared % width != 0)
      c.fail("shared_expert_intermediate_size",
             fmt::format("{} is not a multiple of moe_intermediate_size {}", shared, width));
    if (shared > 0) m["shared_experts"] = shared / width;
  } else if (deepseek) {
    if (c.integer_or("moe_layer_freq", 1) != 1)
      c.fail("moe_layer_freq", "MoE on every other layer is not modelled");
    m["num_experts"] = c.integer("n_routed_experts");
    m["experts_per_token"] = c.integer("num_experts_per_tok");
    m["expert_ffn_hidden_size"] = c.integer("moe_intermediate_size");
    m["shared_experts"] = c.integer_or("n_shared_experts", 0);
    m["dense_layers"] = c.integer_or("first_k_dense_replace", 0);
  } else if (type == "mixtral" || type == "gpt_oss" || type == "minimax_m2") {
    // The experts are intermediate_size wide; there is no dense MLP.
    m["num_experts"] = c.integer("num_local_experts");
    m["experts_per_token"] =
        c.integer_or("num_experts_per_tok", c.integer_or("experts_per_token", 0));
    m["expert_ffn_hidden_size"] = c.integer("intermediate_size");
    if (c.integer_or("shared_intermediate_size", 0) > 0)
      c.fail("shared_intermediate_size", "MiniMax's shared MLP is not modelled");
  }
  if (c.has("layer_types")) {
    bool sliding = false;
    for (const auto& t : c.raw("layer_types")) {
      const std::string kind = t.is_string() ? t.get<std::string>() : "";
      if (kind != "full_attention" && kind != "sliding_attention")
        c.fail("layer_types", fmt::format("layer type '{}' is not modelled", kind));
      sliding = sliding || kind == "sliding_attention";
    }
    if (sliding)
      out.notes.push_back(fmt::format(
          "{}: sliding-window layers ({} tokens) are priced and cached as full attention: KV "
          "bytes and decode attention are over-estimated",
          file, c.integer_or("sliding_window", 0)));
  } else if (c.has("sliding_window") && c.boolean_or("use_sliding_window", type == "mistral")) {
    out.notes.push_back(
        fmt::format("{}: a {}-token sliding window is priced and cached as full attention", file,
                    c.integer("sliding_window")));
  }
  // The scenario loader has the last word on ranges and consistency.
  const nlohmann::json doc = {{"model", m}};
  JsonObject o = JsonValue::root(doc, file).object();
  load_model(o.at("model"));
  return out;
}

}  // namespace servesim

// `servesim model import`: Hugging Face config.json files (the keys that matter, as published)
// become inline models whose parameter counts equal the catalogue entries built from the same
// configs by hand.

#include <catch2/catch.hpp>
#include <fstream>

#include "models/llm.h"
#include "run/scenario_cluster.h"
#include "sim/error.h"
#include "sim/json_reader.h"
#include "test_support.h"
#include "tools/model_import.h"

using namespace servesim;
using namespace servesim::testing;
using nlohmann::json;

namespace {

// huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json (the keys servesim reads).
const json kDeepSeekV3 = {
    {"model_type", "deepseek_v3"},   {"num_hidden_layers", 61},    {"hidden_size", 7168},
    {"num_attention_heads", 128},    {"num_key_value_heads", 128}, {"intermediate_size", 18432},
    {"moe_intermediate_size", 2048}, {"n_routed_experts", 256},    {"n_shared_experts", 1},
    {"num_experts_per_tok", 8},      {"first_k_dense_replace", 3}, {"moe_layer_freq", 1},
    {"q_lora_rank", 1536},           {"kv_lora_rank", 512},        {"qk_nope_head_dim", 128},
    {"qk_rope_head_dim", 64},        {"v_head_dim", 128},          {"vocab_size", 129280},
    {"tie_word_embeddings", false}};

// huggingface.co/Qwen/Qwen3-235B-A22B/blob/main/config.json.
const json kQwen3Moe = {{"model_type", "qwen3_moe"},  {"num_hidden_layers", 94},
                        {"hidden_size", 4096},        {"num_attention_heads", 64},
                        {"num_key_value_heads", 4},   {"head_dim", 128},
                        {"intermediate_size", 12288}, {"moe_intermediate_size", 1536},
                        {"num_experts", 128},         {"num_experts_per_tok", 8},
                        {"decoder_sparse_step", 1},   {"mlp_only_layers", json::array()},
                        {"vocab_size", 151936},       {"tie_word_embeddings", false}};

// huggingface.co/openai/gpt-oss-120b/blob/main/config.json (layer_types shortened to the
// alternation it repeats 18 times).
json gpt_oss() {
  json c = {{"model_type", "gpt_oss"},     {"num_hidden_layers", 36},  {"hidden_size", 2880},
            {"num_attention_heads", 64},   {"num_key_value_heads", 8}, {"head_dim", 64},
            {"intermediate_size", 2880},   {"num_local_experts", 128}, {"num_experts_per_tok", 4},
            {"experts_per_token", 4},      {"sliding_window", 128},    {"vocab_size", 201088},
            {"tie_word_embeddings", false}};
  for (int i = 0; i < 18; ++i) {
    c["layer_types"].push_back("sliding_attention");
    c["layer_types"].push_back("full_attention");
  }
  return c;
}

ModelSpec as_spec(const ImportedModel& m) {
  const json doc = {{"model", m.model}};
  JsonObject o = JsonValue::root(doc, "t.json").object();
  return load_model(o.at("model"));
}

std::string import_error(const json& config) {
  try {
    import_hf_config(config, "config.json", "x");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("imported configs match the catalogue built from the same configs", "[import]") {
  const ModelSpec v3 = as_spec(import_hf_config(kDeepSeekV3, "config.json", "DeepSeek-V3"));
  CHECK(v3.total_params() == find_model("DeepSeek-V3")->total_params());
  CHECK(v3.active_params_per_token() == find_model("DeepSeek-V3")->active_params_per_token());
  CHECK(v3.kv_bytes_per_token(DType::kBf16) == 70'272.0);
  CHECK(v3.dense_layers == 3);

  const ModelSpec qwen = as_spec(import_hf_config(kQwen3Moe, "config.json", "q"));
  CHECK(qwen.total_params() == find_model("Qwen3-235B-A22B")->total_params());

  const ImportedModel oss = import_hf_config(gpt_oss(), "config.json", "gpt-oss-120b");
  CHECK(as_spec(oss).total_params() == find_model("gpt-oss-120b")->total_params());
  REQUIRE(oss.notes.size() == 1);
  CHECK(oss.notes[0] ==
        "config.json: sliding-window layers (128 tokens) are priced and cached as full "
        "attention: KV bytes and decode attention are over-estimated");

  // A dense Llama config: Llama-3.1-8B.
  const json llama = {{"model_type", "llama"},    {"num_hidden_layers", 32},
                      {"hidden_size", 4096},      {"num_attention_heads", 32},
                      {"num_key_value_heads", 8}, {"intermediate_size", 14336},
                      {"vocab_size", 128256},     {"tie_word_embeddings", false}};
  const ModelSpec l = as_spec(import_hf_config(llama, "config.json", "l"));
  CHECK(l.total_params() == find_model("Llama-3.1-8B")->total_params());
  CHECK(!l.moe());
}

TEST_CASE("configs servesim cannot price are refused with the key named", "[import]") {
  json c = kDeepSeekV3;
  c["model_type"] = "qwen3_next";
  CHECK(import_error(c) ==
        "config.json: /model_type: unsupported model type 'qwen3_next'; valid: llama, mistral, "
        "qwen2, qwen3, qwen2_moe, qwen3_moe, mixtral, deepseek_v2, deepseek_v3, kimi_k2, "
        "gpt_oss, minimax_m2");
  c = kDeepSeekV3;
  c.erase("kv_lora_rank");
  CHECK(import_error(c) == "config.json: /: missing key 'kv_lora_rank'");
  c = kQwen3Moe;
  c["mlp_only_layers"] = {0, 1};
  CHECK(import_error(c) ==
        "config.json: /mlp_only_layers: dense layers between MoE layers are not modelled");
  c = gpt_oss();
  c["layer_types"][3] = "linear_attention";
  CHECK(import_error(c) ==
        "config.json: /layer_types: layer type 'linear_attention' is not "
        "modelled");
  // A multimodal wrapper: the text model is read from text_config, errors point into it.
  json wrapped = {{"model_type", "kimi_k25"}, {"text_config", kDeepSeekV3}};
  wrapped["text_config"]["model_type"] = "kimi_k2";
  CHECK(import_error(wrapped) == "(no error)");
  wrapped["text_config"].erase("vocab_size");
  CHECK(import_error(wrapped) == "config.json: /text_config: missing key 'vocab_size'");
}

TEST_CASE("servesim model import prints a model a scenario accepts", "[import][cli]") {
  const std::string dir = tmp_path("DeepSeek-V3");
  std::filesystem::create_directories(dir);
  {
    std::ofstream out(dir + "/config.json");
    out << kDeepSeekV3.dump();
  }
  const std::string model_out = tmp_path("imported_model.json");
  REQUIRE(run_cli("model import " + dir + "/config.json -o " + model_out) == 0);
  json doc = load_scenario("closed_loop_h100.json");
  doc["model"] = json::parse(read_text(model_out));
  CHECK(doc["model"]["name"] == "DeepSeek-V3");
  doc["precision"] = {{"weights", "fp8"}};
  doc["cluster"]["nodes"][0]["gpus"]["type"] = "H200";
  doc["instances"][0]["tp"] = 8;
  doc["instances"][0]["ep"] = 8;
  doc["workload"]["concurrency"] = 4;
  doc["workload"]["requests_per_client"] = 1;
  doc["workload"]["warmup_per_client"] = 0;
  const RunOutput out = run_doc(doc);
  CHECK(out.result["summary"]["completed"] == 4);
  std::string err;
  CHECK(run_cli("model import /nonexistent/config.json", &err) == 2);
  CHECK(err.rfind("error: /nonexistent/config.json", 0) == 0);
}

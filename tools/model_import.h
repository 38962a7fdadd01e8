#pragma once
/// `servesim model import config.json`: turns a Hugging Face config.json into the inline model
/// object of a scenario (/model), for the dense and MoE families whose shapes servesim prices
/// (Llama, Mistral, Qwen2/3 and their MoE variants, Mixtral, DeepSeek-V2/V3 and Kimi-K2 with
/// MLA, gpt-oss, MiniMax-M2). Architectures servesim cannot price (linear or sparse attention,
/// unequal shared-expert widths) are refused, not approximated; approximations servesim makes
/// (sliding-window layers priced as full attention) are returned as notes.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace servesim {

struct ImportedModel {
  nlohmann::ordered_json model;  ///< the /model object, accepted by the scenario loader
  std::vector<std::string> notes;
};

/// `config` is the parsed config.json read from `file` (named in errors); `name` the model's
/// name in results.
ImportedModel import_hf_config(const nlohmann::json& config, const std::string& file,
                               const std::string& name);

}  // namespace servesim

#pragma once
/// A fingerprint of a scenario, recorded in every result so two results can be told to come
/// from the same input (or not) without diffing files.

#include <nlohmann/json.hpp>
#include <string>

namespace servesim {

/// FNV-1a 64 of the scenario's canonical JSON (keys sorted, no whitespace, as nlohmann::json
/// dumps it) after --set overrides, as 16 lower-case hex digits. The seed given by --seed is
/// recorded separately and is not part of the hash.
std::string scenario_hash(const nlohmann::json& scenario);

}  // namespace servesim

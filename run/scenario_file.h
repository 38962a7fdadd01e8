#pragma once
/// Reading a scenario file and applying command-line overrides (`--set /a/b=VALUE`).

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace servesim {

/// Parses `path` as JSON; a syntax error names the file, line and column.
nlohmann::json read_json_file(const std::string& path);

/// Applies `POINTER=VALUE` overrides in order. VALUE is parsed as JSON when it parses (numbers,
/// booleans, objects) and taken as a string otherwise. The parent of the pointer must exist;
/// the key itself may be new. Errors name the override.
void apply_overrides(nlohmann::json& doc, const std::vector<std::string>& overrides);

}  // namespace servesim

#include "run/scenario_file.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "sim/error.h"

namespace servesim {

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("{}: cannot open", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // Turn the byte offset into a line and column a person can find.
    size_t line = 1, column = 1;
    for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    const auto colon = what.find("parse error");
    throw InputError(fmt::format("{}:{}:{}: invalid JSON: {}", path, line, column,
                                 colon == std::string::npos ? what : what.substr(colon)));
  }
}

void apply_overrides(nlohmann::json& doc, const std::vector<std::string>& overrides) {
  for (const std::string& item : overrides) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || item[0] != '/')
      throw InputError(fmt::format("--set {}: expected /json/pointer=VALUE", item));
    const std::string pointer_text = item.substr(0, eq);
    const std::string value_text = item.substr(eq + 1);
    nlohmann::json value;
    try {
      value = nlohmann::json::parse(value_text);
    } catch (const nlohmann::json::parse_error&) {
      value = value_text;
    }
    try {
      const nlohmann::json::json_pointer pointer(pointer_text);
      const auto parent = pointer.parent_pointer();
      if (!doc.contains(parent) || !(doc.at(parent).is_object() || doc.at(parent).is_array()))
        throw InputError(fmt::format("--set {}: {} does not exist in the scenario", item,
                                     parent.to_string().empty() ? "/" : parent.to_string()));
      if (doc.at(parent).is_array() && !doc.contains(pointer))
        throw InputError(fmt::format("--set {}: no such array element", item));
      doc[pointer] = value;
    } catch (const nlohmann::json::exception& e) {
      throw InputError(fmt::format("--set {}: {}", item, e.what()));
    }
  }
}

}  // namespace servesim

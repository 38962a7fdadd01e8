#include "run/scenario_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "sim/error.h"
#include "sim/json_parse.h"

namespace servesim {

nlohmann::json read_json_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError(fmt::format("{}: is a directory, not a JSON file", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open", path));
  // Read in pieces up to the cap, so that /dev/zero or a huge file fails fast and small.
  std::string text;
  char piece[1 << 16];
  while (in.read(piece, sizeof piece) || in.gcount() > 0) {
    text.append(piece, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxJsonFileBytes)
      throw InputError(fmt::format("{}: larger than {} MiB, too large for a JSON file", path,
                                   kMaxJsonFileBytes >> 20));
  }
  if (in.bad()) throw InputError(fmt::format("{}: read failed", path));
  return parse_json_strict(text, path);
}

void apply_overrides(nlohmann::json& doc, const std::vector<std::string>& overrides) {
  for (const std::string& item : overrides) {
    // Echoed in messages: arbitrary bytes from the command line, kept to one short line.
    const std::string shown = printable_excerpt(item, 80);
    if (!is_valid_utf8(item))
      throw InputError(
          fmt::format("--set {}: not valid UTF-8 (names and values are written "
                      "to the result JSON, which must be UTF-8)",
                      shown));
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || item[0] != '/')
      throw InputError(fmt::format("--set {}: expected /json/pointer=VALUE", shown));
    const std::string pointer_text = item.substr(0, eq);
    // With the value's own depth capped, this caps the depth any number of --set can build.
    if (std::count(pointer_text.begin(), pointer_text.end(), '/') > int64_t{kMaxJsonDepth})
      throw InputError(
          fmt::format("--set {}: pointer deeper than {} levels", shown, kMaxJsonDepth));
    const std::string value_text = item.substr(eq + 1);
    nlohmann::json value;
    try {
      value = parse_json_strict(value_text, fmt::format("--set {}", shown), false);
    } catch (const JsonSyntaxError&) {
      value = value_text;  // not JSON: a string (other rule breaks are errors)
    }
    try {
      const nlohmann::json::json_pointer pointer(pointer_text);
      const auto parent = pointer.parent_pointer();
      if (!doc.contains(parent) || !(doc.at(parent).is_object() || doc.at(parent).is_array()))
        throw InputError(fmt::format("--set {}: {} does not exist in the scenario", shown,
                                     parent.to_string().empty() ? "/" : parent.to_string()));
      if (doc.at(parent).is_array() && !doc.contains(pointer))
        throw InputError(fmt::format("--set {}: no such array element", shown));
      doc[pointer] = value;
    } catch (const nlohmann::json::exception& e) {
      throw InputError(fmt::format("--set {}: {}", shown, e.what()));
    }
  }
}

}  // namespace servesim

#pragma once
/// Strict parsing of JSON text from users (scenario files, `--set` values, JSON trace lines).
/// nlohmann's parser keeps the last of duplicate keys silently, throws a non-parse exception
/// on numbers beyond double range, and builds documents of any depth that later recursive walks
/// (dump, hashing) overflow the stack on. This pass rejects all three with a located message
/// before a document is built.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "sim/error.h"

namespace servesim {

/// Deepest nesting of arrays and objects accepted; scenarios need fewer than ten levels.
inline constexpr size_t kMaxJsonDepth = 64;
/// Largest JSON file read whole (a scenario; traces are read line by line).
inline constexpr size_t kMaxJsonFileBytes = size_t{64} << 20;

/// The text is not JSON at all (as opposed to JSON that breaks a rule above): `--set` then
/// takes the value as a string.
class JsonSyntaxError : public InputError {
 public:
  using InputError::InputError;
};

/// Parses `text`. Errors start with `where` (a file, "FILE:LINE", "--set ..."): a syntax
/// error (JsonSyntaxError) adds ":LINE:COLUMN" when `line_column`; a duplicate key, nesting
/// deeper than kMaxJsonDepth or a number beyond double range names its JSON pointer.
nlohmann::json parse_json_strict(std::string_view text, std::string_view where,
                                 bool line_column = true);

/// Whether `text` is well-formed UTF-8 (what nlohmann requires of strings it writes).
bool is_valid_utf8(std::string_view text);

/// At most `max_chars` of `text`, with control bytes and bytes that are not UTF-8 shown as
/// '?', and "..." where it was cut: for echoing user input in one-line error messages.
std::string printable_excerpt(std::string_view text, size_t max_chars = 60);

}  // namespace servesim

#pragma once
/// JSON text laid out exactly as nlohmann's dump lays it out (indentation, separators, escaping,
/// the form of each number), with doubles formatted by Dragonbox (fmt's shortest round-trip
/// digits) instead of nlohmann's Grisu2, several times faster. The two give the same digits for
/// nearly every double; where Grisu2's are not the shortest (it does not promise they are),
/// these are shorter. Either way the text reads back to the same double.
/// tests/test_json_text.cc checks the layout against nlohmann's dump.

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace servesim {

/// Room `write_json_double` needs: at most 25 characters (a sign, 17 digits, a point, "e-308"),
/// and scratch room past them.
constexpr size_t kJsonDoubleMaxChars = 48;

/// Writes `value` as nlohmann writes a double ("1.0", "0.25", "0.0001", "1e-05", "1.5e+20",
/// "-0.0"; "null" when not finite) at `out`, which has kJsonDoubleMaxChars free; returns the end.
char* write_json_double(char* out, double value);

/// Writes `value`, a number meant as the decimal `units` x 10^-scale (a time in nanoseconds as
/// seconds, say), exactly as write_json_double writes it: from the decimal's digits, without
/// searching for the shortest, when value is the double nearest to that decimal.
char* write_json_decimal(char* out, int64_t units, int scale, double value);

/// Whether `text` goes between quotes as it is in JSON (printable ASCII without a quote or a
/// backslash): most strings, so escaping is left to the rare rest.
bool json_string_needs_no_escape(std::string_view text);

/// Appends `value`'s text to `out`: compact when `indent` < 0, otherwise as
/// dump(indent, ' ', false, error_handler_t::replace) writes it.
void append_json(std::string& out, const nlohmann::ordered_json& value, int indent);

/// Writes `value`'s text, as append_json gives it but for its first `skip` characters, to `out`
/// a piece at a time: a large document's text is never held whole.
void write_json(std::ostream& out, const nlohmann::ordered_json& value, int indent,
                size_t skip = 0);

/// `value`'s text, as append_json writes it.
std::string json_text(const nlohmann::ordered_json& value, int indent);

}  // namespace servesim

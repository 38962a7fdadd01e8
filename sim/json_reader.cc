#include "sim/json_reader.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "sim/error.h"
#include "sim/time.h"

namespace servesim {
namespace {

const char* type_name(const nlohmann::json& j) {
  if (j.is_null()) return "null";
  if (j.is_boolean()) return "a boolean";
  if (j.is_number()) return "a number";
  if (j.is_string()) return "a string";
  if (j.is_array()) return "an array";
  return "an object";
}

}  // namespace

std::string json_pointer_escape(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

JsonValue JsonValue::root(const nlohmann::json& doc, std::string file) {
  return JsonValue(&doc, "", std::make_shared<const std::string>(std::move(file)));
}

void JsonValue::fail(std::string_view message) const {
  throw InputError(fmt::format("{}: {}: {}", *file_, pointer_.empty() ? "/" : pointer_, message));
}

double JsonValue::as_double() const {
  if (!j_->is_number()) fail(fmt::format("expected a number, got {}", type_name(*j_)));
  const double d = j_->get<double>();
  if (!std::isfinite(d)) fail("must be finite");
  return d;
}

double JsonValue::positive_double() const {
  const double d = as_double();
  if (!(d > 0)) fail(fmt::format("must be > 0, got {}", d));
  return d;
}

double JsonValue::nonnegative_double() const {
  const double d = as_double();
  if (d < 0) fail(fmt::format("must be >= 0, got {}", d));
  return d;
}

double JsonValue::fraction() const {
  const double d = as_double();
  if (d < 0 || d > 1) fail(fmt::format("must be in [0, 1], got {}", d));
  return d;
}

int64_t JsonValue::as_int() const {
  // An unsigned value above 2^63 - 1 would wrap to a negative int64: say so, as written.
  if (j_->is_number_unsigned() &&
      j_->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    fail(fmt::format("{} is out of range (at most {})", j_->dump(),
                     std::numeric_limits<int64_t>::max()));
  if (j_->is_number_integer()) return j_->get<int64_t>();
  if (j_->is_number_float()) {
    const double d = j_->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e18)
      return static_cast<int64_t>(d);
    fail(fmt::format("expected an integer, got {}", d));
  }
  fail(fmt::format("expected an integer, got {}", type_name(*j_)));
}

int64_t JsonValue::positive_int() const {
  const int64_t v = as_int();
  if (v <= 0) fail(fmt::format("must be > 0, got {}", v));
  return v;
}

int64_t JsonValue::nonnegative_int() const {
  const int64_t v = as_int();
  if (v < 0) fail(fmt::format("must be >= 0, got {}", v));
  return v;
}

int64_t JsonValue::int_in_range(int64_t lo, int64_t hi) const {
  const int64_t v = as_int();
  if (v < lo || v > hi) fail(fmt::format("must be in [{}, {}], got {}", lo, hi, v));
  return v;
}

double JsonValue::number_in_range(double lo, double hi) const {
  const double x = lo > 0 ? positive_double() : nonnegative_double();
  if (!(x >= lo && x <= hi)) fail(fmt::format("must be in [{:g}, {:g}], got {:g}", lo, hi, x));
  return x;
}

double JsonValue::seconds() const {
  const double s = nonnegative_double();
  if (s > kMaxInputSeconds)
    fail(fmt::format("must be at most {:g} s (about 31 years), got {:g}", kMaxInputSeconds, s));
  return s;
}

double JsonValue::positive_seconds() const {
  const double s = seconds();
  if (!(s > 0)) fail(fmt::format("must be > 0, got {}", s));
  return s;
}

bool JsonValue::as_bool() const {
  if (!j_->is_boolean()) fail(fmt::format("expected a boolean, got {}", type_name(*j_)));
  return j_->get<bool>();
}

std::string JsonValue::as_string() const {
  if (!j_->is_string()) fail(fmt::format("expected a string, got {}", type_name(*j_)));
  return j_->get<std::string>();
}

std::string JsonValue::one_of(std::initializer_list<std::string_view> valid) const {
  std::string s = as_string();
  for (auto v : valid)
    if (v == s) return s;
  fail(fmt::format("unknown value '{}'; valid: {}", s, fmt::join(valid, ", ")));
}

JsonObject JsonValue::object() const {
  if (!j_->is_object()) fail(fmt::format("expected an object, got {}", type_name(*j_)));
  return JsonObject(*this);
}

std::vector<JsonValue> JsonValue::array() const {
  if (!j_->is_array()) fail(fmt::format("expected an array, got {}", type_name(*j_)));
  std::vector<JsonValue> out;
  out.reserve(j_->size());
  for (size_t i = 0; i < j_->size(); ++i)
    out.emplace_back(&(*j_)[i], fmt::format("{}/{}", pointer_, i), file_);
  return out;
}

std::vector<JsonValue> JsonValue::nonempty_array() const {
  auto a = array();
  if (a.empty()) fail("must not be empty");
  return a;
}

JsonObject::JsonObject(JsonValue v) : v_(std::move(v)) {}

bool JsonObject::has(std::string_view key) const {
  return v_.raw().contains(key);
}

std::optional<JsonValue> JsonObject::maybe(std::string_view key) {
  known_.emplace(key);  // asked for, present or not: a valid key here
  auto it = v_.raw().find(key);
  if (it == v_.raw().end()) return std::nullopt;
  return JsonValue(&*it, fmt::format("{}/{}", v_.pointer(), json_pointer_escape(key)),
                   std::make_shared<const std::string>(v_.file()));
}

JsonValue JsonObject::at(std::string_view key) {
  auto v = maybe(key);
  if (!v) fail(fmt::format("missing required key '{}'", key));
  return *v;
}

double JsonObject::get_or(std::string_view key, double fallback) {
  auto v = maybe(key);
  return v ? v->as_double() : fallback;
}
int64_t JsonObject::get_or(std::string_view key, int64_t fallback) {
  auto v = maybe(key);
  return v ? v->as_int() : fallback;
}
bool JsonObject::get_or(std::string_view key, bool fallback) {
  auto v = maybe(key);
  return v ? v->as_bool() : fallback;
}
std::string JsonObject::get_or(std::string_view key, std::string fallback) {
  auto v = maybe(key);
  return v ? v->as_string() : fallback;
}

std::vector<std::string> JsonObject::keys() const {
  std::vector<std::string> out;
  for (auto it = v_.raw().begin(); it != v_.raw().end(); ++it) out.push_back(it.key());
  return out;
}

void JsonObject::finish() const {
  for (auto it = v_.raw().begin(); it != v_.raw().end(); ++it) {
    if (known_.count(it.key()) == 0) {
      JsonValue bad(&it.value(), fmt::format("{}/{}", v_.pointer(), json_pointer_escape(it.key())),
                    std::make_shared<const std::string>(v_.file()));
      bad.fail(fmt::format("unknown key; valid here: {}", fmt::join(known_, ", ")));
    }
  }
}

}  // namespace servesim

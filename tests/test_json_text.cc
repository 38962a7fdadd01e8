#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "run/json_text.h"
#include "sim/time.h"

using servesim::json_text;
using servesim::write_json_double;

namespace {

std::string ours(double x) {
  char buffer[servesim::kJsonDoubleMaxChars];
  return {buffer, write_json_double(buffer, x)};
}

std::string nlohmanns(double x) {
  return nlohmann::ordered_json(x).dump();
}

double from_bits(uint64_t bits) {
  double x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

}  // namespace

TEST_CASE("Doubles are written in nlohmann's layout, with digits that read back exactly") {
  // Each branch of the layout: integers up to 10^15 get ".0", the point inside, down to 1e-4
  // in fixed form, then exponents of one to three digits.
  for (double x : {0.0,
                   -0.0,
                   1.0,
                   -1.0,
                   100.0,
                   1e15,
                   1e16,
                   123456789012345.0,
                   0.5,
                   0.25,
                   1.5,
                   3.14159,
                   1e-4,
                   1.5e-4,
                   1e-5,
                   1.5e-5,
                   1e-100,
                   1e100,
                   1.7976931348623157e308,
                   5e-324,
                   2.2250738585072014e-308,
                   0.1,
                   0.2,
                   0.30000000000000004,
                   1e21,
                   42.0,
                   -123.456,
                   6.02214076e23})
    CHECK(ours(x) == nlohmanns(x));
  CHECK(ours(std::numeric_limits<double>::quiet_NaN()) == "null");
  CHECK(ours(std::numeric_limits<double>::infinity()) == "null");

  // Every exponent and random significands, and the kinds of values results hold (times in
  // nanoseconds as seconds, milliseconds, fractions). Grisu2 does not promise the shortest
  // digits; where the two differ, ours must read back to the same double and be no longer.
  std::mt19937_64 rng(7);
  int64_t compared = 0, differing = 0;
  auto check = [&](double x) {
    const std::string a = ours(x), b = nlohmanns(x);
    ++compared;
    if (a == b) return;
    ++differing;
    CHECK(std::stod(a) == x);
    CHECK(a.size() <= b.size());
  };
  for (int i = 0; i < 200000; ++i) {
    const double x = from_bits(rng());
    if (std::isfinite(x)) check(x);
    check(static_cast<double>(rng() % 4000000000000) / 1e9);  // a time in seconds
    check(static_cast<double>(rng() % 100000000) / 1e6);      // a latency in ms
    check(static_cast<double>(rng() % 1000000) / 999983.0);   // a fraction
  }
  // Measured: 990 of 799,905 differ (0.12%; e.g. Grisu2's 40.261571000000004 for 40.261571,
  // or a last digit farther from the double). The bound, 0.5%, flags a formatter gone wrong
  // (a wrong layout or digits differs on most values).
  CHECK(differing * 200 <= compared);
}

TEST_CASE("Documents are laid out as nlohmann's dump lays them out") {
  const auto doc = nlohmann::ordered_json::parse(R"({
    "name": "r0", "escaped": "tab\there \"q\" back\\slash \u0001 \u00e9 \u2603",
    "empty_object": {}, "empty_array": [], "ints": [-3, 0, 18446744073709551615, -9223372036854775808],
    "nested": {"a": [1.5, {"b": [[], {}], "c": null}], "t": true, "f": false},
    "times": [0.001, 1e-05, 123456.789, 1e+300]
  })");
  for (int indent : {-1, 0, 1, 2})
    CHECK(json_text(doc, indent) ==
          doc.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  // Bytes that are not UTF-8 are replaced, as the result's dump replaces them.
  const nlohmann::ordered_json bad = {{"path", std::string("a\xff"
                                                           "b")}};
  CHECK(json_text(bad, 1) ==
        bad.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  CHECK(json_text(nlohmann::ordered_json::object(), 1) == "{}");
  CHECK(json_text(std::numeric_limits<double>::quiet_NaN(), 1) == "null");
}

TEST_CASE("Times written from their nanoseconds read as the doubles the result holds") {
  // write_json_decimal's text must be write_json_double's for the same double, whether or not
  // the double is the one nearest to the decimal (Time::to_s multiplies by an inexact 1e-9).
  std::mt19937_64 rng(11);
  auto same = [](int64_t ns) {
    char a[servesim::kJsonDoubleMaxChars], b[servesim::kJsonDoubleMaxChars];
    const servesim::Time t{ns};
    const std::string as_s(a, servesim::write_json_decimal(a, ns, 9, t.to_s()));
    const std::string as_ms(b, servesim::write_json_decimal(b, ns, 6, t.to_ms()));
    CHECK(as_s == ours(t.to_s()));
    CHECK(as_ms == ours(t.to_ms()));
  };
  for (int64_t ns : {int64_t{0}, int64_t{1}, int64_t{-5}, int64_t{1'000'000'000},
                     int64_t{123'456'789}, int64_t{999'999'999'999'999},
                     int64_t{1'000'000'000'000'000}, int64_t{4'000'000'000'000'000'001}})
    same(ns);
  for (int i = 0; i < 100000; ++i) {
    same(static_cast<int64_t>(rng() % 100'000'000'000'000));  // up to 28 hours
    same(static_cast<int64_t>(rng() % 1'000'000'000));        // up to a second
    same(static_cast<int64_t>(rng() % 10'000) * 1'000'000);   // whole milliseconds
  }
}

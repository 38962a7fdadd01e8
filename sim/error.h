#pragma once
/// The one error type of servesim: bad user input (scenario, trace, command line). Past the
/// loader a broken invariant is a bug and goes through SERVESIM_CHECK instead.

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace servesim {

class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A broken invariant at run time (conservation law, KV over capacity): a bug, reported loudly.
class InvariantError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace servesim

#define SERVESIM_CHECK(cond, ...)                                                                  \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      throw ::servesim::InvariantError(fmt::format("invariant broken: {} ({}:{}): {}", #cond,      \
                                                   __FILE__, __LINE__, fmt::format(__VA_ARGS__))); \
  } while (0)

#pragma once
/// `servesim list policies`: the registered policies and engine presets.

#include <string>

namespace servesim {

/// Names of the registered policies, by kind, with one-line descriptions, and the engines.
std::string describe_policies();

}  // namespace servesim

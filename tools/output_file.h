#pragma once
/// Writing the commands' output files.

#include <string>

namespace servesim {

/// Writes through a temporary file and renames it into place, so a failed run never leaves a
/// partial file that looks whole. Errors name the path.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace servesim

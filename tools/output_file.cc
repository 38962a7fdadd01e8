#include "tools/output_file.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "sim/error.h"

namespace servesim {

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw InputError(fmt::format("{}: cannot write", path));
    out << text;
    if (!out) throw InputError(fmt::format("{}: write failed", path));
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace servesim

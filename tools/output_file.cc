#include "tools/output_file.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "sim/error.h"

namespace servesim {

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError(fmt::format("{}: is a directory; give a file path", path));
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw InputError(fmt::format("{}: cannot write", path));
    out << text;
    out.close();
    if (!out) {
      std::filesystem::remove(tmp, ec);
      throw InputError(fmt::format("{}: write failed", path));
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw InputError(fmt::format("{}: cannot write: {}", path, ec.message()));
  }
}

}  // namespace servesim

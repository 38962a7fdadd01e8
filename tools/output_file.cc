#include "tools/output_file.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "sim/error.h"

namespace servesim {
namespace {

void remove_quietly(const std::string& path) {
  std::error_code ignored;
  std::filesystem::remove(path, ignored);
}

void check_not_directory(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError(fmt::format("{}: is a directory; give a file path", path));
}

/// An existing path that is not a regular file (a device, a FIFO): written in place.
bool is_special(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  return !ec && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status) &&
         !std::filesystem::is_directory(status);
}

}  // namespace

std::string staging_path(const std::string& path) {
  return is_special(path) ? path : path + ".tmp";
}

void commit_staged(const std::string& staged, const std::string& path) {
  if (staged == path) return;
  std::error_code ec;
  std::filesystem::rename(staged, path, ec);
  if (ec) {
    remove_quietly(staged);
    throw InputError(fmt::format("{}: cannot write: {}", path, ec.message()));
  }
}

void write_file_atomically(const std::string& path, const std::string& text) {
  check_not_directory(path);
  const std::string tmp = staging_path(path);
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw InputError(fmt::format("{}: cannot write", path));
    out << text;
    out.close();
    if (!out) {
      if (tmp != path) remove_quietly(tmp);
      throw InputError(fmt::format("{}: write failed", path));
    }
  }
  commit_staged(tmp, path);
}

std::string result_text(const nlohmann::ordered_json& result) {
  // Replacing, not throwing, on bytes that are not UTF-8: paths and the command line are
  // recorded as the system gave them, and a finished run must not be lost to them.
  return result.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

RequestSpool::RequestSpool(const std::string& output_path) : output_path_(output_path) {
  // Next to the output (same file system, and cleaned up with it); for standard output, in the
  // temporary directory with the process id in the name.
  spool_path_ = output_path == "-" || is_special(output_path)
                    ? (std::filesystem::temp_directory_path() /
                       fmt::format("servesim-requests-{}.tmp", ::getpid()))
                          .string()
                    : output_path + ".requests.tmp";
  if (output_path != "-") check_not_directory(output_path);
  spool_.open(spool_path_, std::ios::binary | std::ios::in | std::ios::out | std::ios::trunc);
  if (!spool_) throw InputError(fmt::format("{}: cannot write", spool_path_));
}

RequestSpool::~RequestSpool() {
  spool_.close();
  remove_quietly(spool_path_);
}

void RequestSpool::write_result(const nlohmann::ordered_json& result, bool with_requests) {
  std::string text = result_text(result);
  const std::streamoff spooled_bytes = spool_.tellp();
  std::string tail;
  if (with_requests) {
    // The result's text ends "\n}\n": the array goes in as the last key.
    SERVESIM_CHECK(text.size() >= 3 && text.compare(text.size() - 3, 3, "\n}\n") == 0,
                   "unexpected end of the result's text");
    text.resize(text.size() - 3);
    text += ",\n \"requests\": [";
    tail = spooled_bytes == 0 ? "]\n}\n" : "\n ]\n}\n";
  }
  spool_.flush();
  if (!spool_) throw InputError(fmt::format("{}: write failed", spool_path_));
  spool_.seekg(0);
  const auto copy_into = [&](std::ostream& out) {
    out << text;
    if (with_requests && spooled_bytes > 0) out << spool_.rdbuf();
    out << tail;
  };
  if (output_path_ == "-") {
    copy_into(std::cout);
    std::cout.flush();
    return;
  }
  const std::string tmp = staging_path(output_path_);
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw InputError(fmt::format("{}: cannot write", output_path_));
    copy_into(out);
    out.close();
    if (!out) {
      if (tmp != output_path_) remove_quietly(tmp);
      throw InputError(fmt::format("{}: write failed", output_path_));
    }
  }
  commit_staged(tmp, output_path_);
}

}  // namespace servesim

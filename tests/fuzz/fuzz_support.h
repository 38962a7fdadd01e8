#pragma once
// Shared by the libFuzzer harnesses: inputs reach the code under test as files, the way a user
// gives them, so the harnesses exercise exactly the paths `servesim run` takes.

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

namespace servesim::fuzz {

/// A file holding `size` bytes of `data`, removed when this goes out of scope. One per process
/// (libFuzzer runs one input at a time per process).
class InputFile {
 public:
  InputFile(const uint8_t* data, size_t size, const char* suffix)
      : path_(std::string("/tmp/servesim-fuzz-") + std::to_string(getpid()) + suffix) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  ~InputFile() { std::remove(path_.c_str()); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace servesim::fuzz

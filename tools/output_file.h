#pragma once
/// Writing the commands' output files.

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace servesim {

/// Writes through a temporary file and renames it into place, so a failed run never leaves a
/// partial file that looks whole. Errors name the path.
void write_file_atomically(const std::string& path, const std::string& text);

/// Where the content of `path` is written until it is complete: PATH.tmp, or PATH itself when
/// it exists and is not a regular file (/dev/null, a FIFO), which a rename would replace.
std::string staging_path(const std::string& path);
/// Moves the staged content into place (nothing to do when it was written in place). Throws
/// InputError naming `path`.
void commit_staged(const std::string& staged, const std::string& path);

/// The result's per-request records, written to a spool file next to the output as requests
/// complete (RunOptions::result_requests_out) and spliced in as the result's last key,
/// "requests", when the result is written: the file is byte for byte what dumping the whole
/// result would give, and memory does not grow with the number of requests. The spool is
/// removed when this object goes, so a failed run leaves nothing.
class RequestSpool {
 public:
  /// `output_path` is the result's path, or "-" for standard output.
  explicit RequestSpool(const std::string& output_path);
  ~RequestSpool();
  RequestSpool(const RequestSpool&) = delete;
  RequestSpool& operator=(const RequestSpool&) = delete;

  std::ostream& stream() { return spool_; }
  /// Writes `result` (which has no "requests" key) followed by the spooled records, through a
  /// temporary file renamed into place (or to standard output).
  void write_result(const nlohmann::ordered_json& result, bool with_requests);

 private:
  std::string output_path_, spool_path_;
  std::fstream spool_;
};

/// The result as `servesim run -o` writes it (indent 1, bytes that are not UTF-8 replaced).
std::string result_text(const nlohmann::ordered_json& result);

}  // namespace servesim

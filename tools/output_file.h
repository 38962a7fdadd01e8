#pragma once
/// Writing the commands' output files.

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
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

/// The result of `servesim run -o`, written once: as requests complete, their records go
/// straight into the output's staging file (staging_path) as the elements of the result's first
/// key, "requests" (RunOptions::result_requests_out); the rest of the result follows when the
/// run ends. The file is byte for byte what result_text gives for the whole result (build_result
/// puts "requests" first), memory does not grow with the records, and each record's bytes are
/// written once. A failed run leaves no file: the staged one goes with this object unless
/// committed. A FIFO or a device is written in place and standard output ("-") directly, so
/// there a failed run's output stops short of a whole JSON document.
class ResultWriter {
 public:
  /// `output_path` is the result's path, or "-" for standard output.
  explicit ResultWriter(std::string output_path);
  ~ResultWriter();
  ResultWriter(const ResultWriter&) = delete;
  ResultWriter& operator=(const ResultWriter&) = delete;

  /// Opens the output and writes the result up to the "requests" array's first element;
  /// returns the stream the elements go to. Called at most once, when the run starts.
  std::ostream& begin_requests();
  /// Writes `result`: after the `records` elements written since begin_requests (then `result`
  /// has no "requests" key), or whole when begin_requests was not called; then moves the file
  /// into place.
  void finish(const nlohmann::ordered_json& result, uint64_t records);

 private:
  void open();
  std::string output_path_, staged_path_;
  /// file_'s buffer: records are a few hundred bytes, the file's writes 1 MiB.
  static constexpr size_t kBufferBytes = size_t{1} << 20;
  std::unique_ptr<char[]> buffer_;
  std::ofstream file_;
  std::ostream* out_ = nullptr;  ///< file_ or std::cout, once open
  bool requests_begun_ = false, committed_ = false;
};

/// The result as `servesim run -o` writes it: indent 1, but the "requests" array (the first key
/// when present) one compact record a line; bytes that are not UTF-8 replaced.
std::string result_text(const nlohmann::ordered_json& result);
/// Writes result_text(result) to `out`, a piece at a time when no records are held in it.
void write_result_text(std::ostream& out, const nlohmann::ordered_json& result);

}  // namespace servesim

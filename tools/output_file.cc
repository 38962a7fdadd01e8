#include "tools/output_file.h"

#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <iterator>
#include <utility>

#include "run/json_text.h"
#include "run/request_record.h"
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
  // json_text replaces, not throws on, bytes that are not UTF-8: paths and the command line
  // are recorded as the system gave them, and a finished run must not be lost to them.
  const auto requests = result.is_object() ? result.find("requests") : result.end();
  if (requests == result.end() || !requests->is_array() || requests->empty() ||
      requests != result.begin())
    return json_text(result, 1) + "\n";
  // A record a line, as ResultWriter streams them (run/request_record.h), then the rest.
  std::string text = "{\n \"requests\": [";
  bool first = true;
  for (const auto& record : *requests) {
    text += first ? "\n" : ",\n";
    text += RecordText::kRecordIndent;
    append_json(text, record, -1);
    first = false;
  }
  text += "\n ]";
  nlohmann::ordered_json rest = nlohmann::ordered_json::object();
  for (auto it = std::next(result.begin()); it != result.end(); ++it) rest[it.key()] = *it;
  if (rest.empty()) return text + "\n}\n";
  const std::string rest_text = json_text(rest, 1);
  return text + "," + rest_text.substr(1) + "\n";
}

void write_result_text(std::ostream& out, const nlohmann::ordered_json& result) {
  const auto requests = result.is_object() ? result.find("requests") : result.end();
  if (requests == result.end() || !requests->is_array() || requests->empty() ||
      requests != result.begin()) {
    write_json(out, result, 1);  // a piece at a time
    out << '\n';
    return;
  }
  out << result_text(result);  // records held in memory: a library caller's result
}

ResultWriter::ResultWriter(std::string output_path) : output_path_(std::move(output_path)) {
  if (output_path_ != "-") check_not_directory(output_path_);
}

ResultWriter::~ResultWriter() {
  if (file_.is_open()) file_.close();
  if (!committed_ && !staged_path_.empty() && staged_path_ != output_path_)
    remove_quietly(staged_path_);
}

void ResultWriter::open() {
  if (output_path_ == "-") {
    out_ = &std::cout;
    return;
  }
  staged_path_ = staging_path(output_path_);
  buffer_ = std::make_unique_for_overwrite<char[]>(kBufferBytes);
  file_.rdbuf()->pubsetbuf(buffer_.get(), static_cast<std::streamsize>(kBufferBytes));
  file_.open(staged_path_, std::ios::binary | std::ios::trunc);
  if (!file_) throw InputError(fmt::format("{}: cannot write", output_path_));
  out_ = &file_;
}

std::ostream& ResultWriter::begin_requests() {
  SERVESIM_CHECK(!out_, "the result's requests begun twice");
  open();
  requests_begun_ = true;
  *out_ << "{\n \"requests\": [";
  return *out_;
}

void ResultWriter::finish(const nlohmann::ordered_json& result, uint64_t records) {
  if (requests_begun_) {
    SERVESIM_CHECK(!result.contains("requests"), "the result's requests written twice");
    // The array as nlohmann closes it, then the rest of the result: its text but the opening
    // brace ("{\n \"servesim\": ..." follows as ",\n \"servesim\": ...").
    *out_ << (records == 0 ? "]" : "\n ]");
    if (result.empty()) {
      *out_ << "\n}\n";
    } else {
      SERVESIM_CHECK(result.is_object(), "the result is not an object");
      *out_ << ',';
      write_json(*out_, result, 1, /*skip=*/1);
      *out_ << '\n';
    }
  } else {
    SERVESIM_CHECK(!out_, "the result's output opened but not begun");
    open();
    write_result_text(*out_, result);
  }
  if (out_ == &std::cout) {
    std::cout.flush();
    if (!std::cout) throw InputError("standard output: write failed");
    return;
  }
  file_.close();
  if (!file_) throw InputError(fmt::format("{}: write failed", output_path_));
  commit_staged(staged_path_, output_path_);
  committed_ = true;
}

}  // namespace servesim

#include "run/kernel_tables.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "sim/error.h"
#include "traces/trace_streams.h"

namespace servesim {
namespace fs = std::filesystem;

namespace {

/// A GPU folder's tables, or a folder of GPU folders' (each subfolder holding gemm/), sorted
/// by name. `where` prefixes the error of a folder that is neither.
void load_folder(const fs::path& dir, const std::string& where,
                 std::shared_ptr<const KernelDb>* single,
                 std::vector<std::shared_ptr<const KernelDb>>* several) {
  std::error_code ec;
  if (fs::is_directory(dir / "gemm", ec)) {
    *single = KernelDb::load_shared(dir);
    return;
  }
  std::vector<fs::path> gpu_dirs;
  if (fs::is_directory(dir, ec))
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (fs::is_directory(entry.path() / "gemm", ec)) gpu_dirs.push_back(entry.path());
  if (gpu_dirs.empty()) {
    // The single-folder loader words the error ("no gemm_perf.csv under DIR").
    try {
      *single = KernelDb::load_shared(dir);
    } catch (const InputError& e) {
      throw InputError(fmt::format("{}: {}", where, e.what()));
    }
    return;
  }
  std::sort(gpu_dirs.begin(), gpu_dirs.end());
  for (const fs::path& d : gpu_dirs) several->push_back(KernelDb::load_shared(d));
}

}  // namespace

KernelTables KernelTables::load(const std::optional<JsonValue>& key, const std::string& base_dir,
                                const std::string& flag_dir, const Cluster& cluster) {
  KernelTables t;
  if (!flag_dir.empty()) {
    t.where_ = "--kernel-db";
    try {
      load_folder(resolve_input_path("", flag_dir), t.where_, &t.every_type_, &t.candidates_);
    } catch (const InputError& e) {
      const std::string what = e.what();
      throw InputError(what.starts_with(t.where_) ? what : t.where_ + ": " + what);
    }
    return t;
  }
  if (!key) return t;
  t.where_ = fmt::format("{}: {}", key->file(), key->pointer());
  if (key->raw().is_object()) {
    JsonObject o = key->object();
    for (const std::string& type : o.keys()) {
      const JsonValue folder = o.at(type);
      const GpuSpec* gpu = nullptr;
      std::vector<std::string> types;
      for (const auto& g : cluster.gpus()) {
        if (g.spec.name == type) gpu = &g.spec;
        if (std::find(types.begin(), types.end(), g.spec.name) == types.end())
          types.push_back(g.spec.name);
      }
      if (!gpu)
        folder.fail(fmt::format("no GPU of type '{}' in the cluster; its types: {}", type,
                                fmt::join(types, ", ")));
      std::shared_ptr<const KernelDb> db;
      try {
        db = KernelDb::load_shared(resolve_input_path(base_dir, folder));
      } catch (const InputError& e) {
        folder.fail(e.what());
      }
      if (!db->measured_on(gpu->name, gpu->memory_bytes))
        folder.fail(fmt::format("tables measured on '{}', not on a {}", db->device(), type));
      t.by_type_[type] = std::move(db);
    }
    o.finish();
    return t;
  }
  try {
    load_folder(resolve_input_path(base_dir, *key), t.where_, &t.every_type_, &t.candidates_);
  } catch (const InputError& e) {
    // Name the key the way every scenario error does, with the loader's reason after it.
    const std::string what = e.what();
    key->fail(what.starts_with(t.where_) ? what.substr(t.where_.size() + 2) : what);
  }
  return t;
}

const KernelDb* KernelTables::for_gpu(const GpuSpec& gpu, const std::string& replica) const {
  if (every_type_) {
    if (!every_type_->measured_on(gpu.name, gpu.memory_bytes))
      throw InputError(fmt::format(
          "{}: tables measured on '{}' cannot price replica '{}' on {}; give a folder of GPU "
          "folders or, in the scenario, an object by GPU type",
          where_, every_type_->device(), replica, gpu.name));
    return every_type_.get();
  }
  if (const auto it = by_type_.find(gpu.name); it != by_type_.end()) return it->second.get();
  for (const auto& db : candidates_)
    if (db->measured_on(gpu.name, gpu.memory_bytes)) return db.get();
  return nullptr;
}

}  // namespace servesim

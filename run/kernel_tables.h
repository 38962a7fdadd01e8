#pragma once
/// Which measured kernel tables (models/kernel_db.h) price which GPU type. `/kernel_db` in a
/// scenario (relative to it) or `--kernel-db` (relative to the working directory, preferred)
/// names one of:
///  - a GPU folder (holding gemm/, e.g. ../shared/data/kernels/aiconfigurator/h100_sxm): it
///    prices every replica, and must have been measured on each replica's GPU type;
///  - a folder of GPU folders (e.g. ../shared/data/kernels/aiconfigurator): each GPU type takes
///    the folder measured on it; a type with none keeps the fitted model;
///  - in a scenario, an object by GPU type ({"H100-SXM": "kernels/h100_sxm", ...}): each folder
///    must have been measured on its type; other types keep the fitted model.
/// A table is never applied to a GPU it was not measured on: that is a one-line error naming
/// the key or flag, the table's device and the GPU type.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/cluster.h"
#include "models/gpu.h"
#include "models/kernel_db.h"
#include "sim/json_reader.h"

namespace servesim {

class KernelTables {
 public:
  /// Reads `/kernel_db` (when `flag_dir` is empty) or the `--kernel-db` folder; the keys of an
  /// object must be GPU types of `cluster`.
  static KernelTables load(const std::optional<JsonValue>& key, const std::string& base_dir,
                           const std::string& flag_dir, const Cluster& cluster);

  /// The tables for a replica of `replica` on `gpu`, or null for the fitted model. Throws
  /// InputError when the only table given was measured on another GPU.
  const KernelDb* for_gpu(const GpuSpec& gpu, const std::string& replica) const;

  bool empty() const { return !every_type_ && by_type_.empty() && candidates_.empty(); }

 private:
  std::string where_;  ///< "FILE: /kernel_db" or "--kernel-db", for messages
  std::shared_ptr<const KernelDb> every_type_;
  std::map<std::string, std::shared_ptr<const KernelDb>, std::less<>> by_type_;
  std::vector<std::shared_ptr<const KernelDb>> candidates_;
};

}  // namespace servesim

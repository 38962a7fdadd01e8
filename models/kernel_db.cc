#include "models/kernel_db.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <mutex>
#include <optional>
#include <string_view>
#include <system_error>

#include "sim/error.h"

namespace servesim {
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------
// Files.

/// Compares version folder names ("0.19.0" < "0.20.1") by numeric components, so the newest
/// measurements win when a folder holds several.
bool version_less(const std::string& a, const std::string& b) {
  auto parts = [](std::string_view s) {
    std::vector<long> out;
    while (!s.empty()) {
      const size_t dot = s.find('.');
      const std::string_view part = s.substr(0, dot);
      long v = -1;
      std::from_chars(part.data(), part.data() + part.size(), v);
      out.push_back(v);
      if (dot == std::string_view::npos) break;
      s.remove_prefix(dot + 1);
    }
    return out;
  };
  const auto pa = parts(a), pb = parts(b);
  if (pa != pb) return pa < pb;
  return a < b;
}

/// `base`/*/`file` (depth 1) or `base`/*/*/`file` (depth 2) in the newest version folder.
std::optional<fs::path> newest(const fs::path& base, int depth, std::string_view file) {
  std::error_code ec;
  if (!fs::is_directory(base, ec)) return std::nullopt;
  std::vector<fs::path> version_dirs;
  if (depth == 1) {
    for (const auto& e : fs::directory_iterator(base, ec))
      if (e.is_directory()) version_dirs.push_back(e.path());
  } else {
    for (const auto& f : fs::directory_iterator(base, ec))
      if (f.is_directory())
        for (const auto& e : fs::directory_iterator(f.path(), ec))
          if (e.is_directory()) version_dirs.push_back(e.path());
  }
  std::optional<fs::path> best;
  for (const fs::path& d : version_dirs) {
    if (!fs::is_regular_file(d / file, ec)) continue;
    if (!best || version_less(best->parent_path().filename().string(), d.filename().string()))
      best = d / file;
  }
  return best;
}

/// A CSV file read whole; rows are split in place into string views (no per-row allocation).
class Csv {
 public:
  explicit Csv(fs::path path) : path_(std::move(path)), name_(path_.string()) {
    std::ifstream in(path_, std::ios::binary);
    if (!in) throw InputError(fmt::format("{}: cannot read", name_));
    in.seekg(0, std::ios::end);
    text_.resize(static_cast<size_t>(in.tellg()));
    in.seekg(0);
    in.read(text_.data(), static_cast<std::streamsize>(text_.size()));
    std::string_view rest = text_;
    const std::string_view header = next_line(rest);
    split(header, header_);
    body_ = rest;
  }

  /// Index of a named column, if present.
  std::optional<size_t> find_column(std::string_view name) const {
    for (size_t i = 0; i < header_.count; ++i)
      if (header_.fields[i] == name) return i;
    return std::nullopt;
  }
  /// Index of a named column; a missing one is an error naming the file.
  size_t column(std::string_view name) const {
    if (const auto i = find_column(name)) return *i;
    throw InputError(fmt::format("{}:1: no column '{}'", name_, name));
  }

  struct Row {
    std::array<std::string_view, 24> fields{};
    size_t count = 0;
    size_t line = 0;
  };

  template <class F>
  void for_each(F&& f) const {
    std::string_view rest = body_;
    Row row;
    row.line = 1;
    while (!rest.empty()) {
      ++row.line;
      const std::string_view line = next_line(rest);
      if (line.empty()) continue;
      split(line, row);
      if (row.count != header_.count)
        throw InputError(fmt::format("{}:{}: {} fields, header has {}", name_, row.line, row.count,
                                     header_.count));
      f(row);
    }
  }

  double number(const Row& row, size_t col) const {
    const std::string_view s = row.fields[col];
    double v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v))
      throw InputError(fmt::format("{}:{}: column '{}': not a number: '{}'", name_, row.line,
                                   header_.fields[col], s));
    return v;
  }
  /// A latency: finite and positive (it is interpolated in log space).
  double latency_ms(const Row& row, size_t col) const {
    const double v = number(row, col);
    if (v <= 0)
      throw InputError(fmt::format("{}:{}: column '{}': latency must be positive, got {}", name_,
                                   row.line, header_.fields[col], v));
    return v;
  }
  const fs::path& path() const { return path_; }

 private:
  static std::string_view next_line(std::string_view& rest) {
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  }
  void split(std::string_view line, Row& row) const {
    row.count = 0;
    while (true) {
      const size_t comma = line.find(',');
      if (row.count == row.fields.size())
        throw InputError(
            fmt::format("{}:{}: more than {} columns", name_, row.line, row.fields.size()));
      row.fields[row.count++] = line.substr(0, comma);
      if (comma == std::string_view::npos) break;
      line.remove_prefix(comma + 1);
    }
  }

  fs::path path_;
  std::string name_;
  std::string text_;
  Row header_;
  std::string_view body_;
};

// ---------------------------------------------------------------------------------------
// Grids.

using Line = KernelDb::Line;
using Grid2 = KernelDb::Grid2;
using Grid3 = KernelDb::Grid3;
using HeadKey = KernelDb::HeadKey;

/// Where x falls on a sorted axis: value = scale * exp((1 - w) log v[lo] + w log v[hi]).
struct Bracket {
  size_t lo = 0, hi = 0;
  double w = 0;
  double scale = 1;
};

Bracket bracket(const std::vector<double>& xs, double x) {
  if (x <= xs.front()) return {};  // launch-bound small end: hold the edge
  const size_t last = xs.size() - 1;
  // Throughput-bound large end: time in proportion to the coordinate (x / x == 1 exactly, so
  // the last grid point itself is returned unchanged).
  if (x >= xs[last]) return {last, last, 0, x / xs[last]};
  const size_t hi = static_cast<size_t>(std::upper_bound(xs.begin(), xs.end(), x) - xs.begin());
  const size_t lo = hi - 1;
  if (xs[lo] == x) return {lo, lo, 0, 1};
  return {lo, hi, std::log(x / xs[lo]) / std::log(xs[hi] / xs[lo]), 1};
}

/// On a grid point (lo == hi) the stored value comes back unchanged, bit for bit.
template <class F>
double blend(const Bracket& b, F&& at) {
  if (b.lo == b.hi) return b.scale * at(b.lo);
  return b.scale * std::exp((1 - b.w) * std::log(at(b.lo)) + b.w * std::log(at(b.hi)));
}

double eval(const Line& l, double x) {
  return blend(bracket(l.x, x), [&](size_t i) { return l.ms[i]; });
}

double eval(const Grid2& g, double outer, double x) {
  return blend(bracket(g.outer, outer), [&](size_t i) { return eval(g.lines[i], x); });
}

double eval(const Grid3& g, double a, double b, double x) {
  const Bracket bb = bracket(g.b, b);
  return blend(bracket(g.a, a), [&](size_t i) {
    return blend(bb, [&](size_t j) { return eval(g.lines[i * g.b.size() + j], x); });
  });
}

/// A measured point before the grid is built: outer coordinates a, b, inner x, time.
struct Point {
  double a, b, x, ms;
  bool operator<(const Point& o) const { return std::tie(a, b, x) < std::tie(o.a, o.b, o.x); }
};

std::vector<double> unique_sorted(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

/// Builds the grid; every (a, b) pair must have measurements (an incomplete grid would leave
/// holes that interpolation cannot bridge).
Grid3 build_grid3(std::vector<Point> points, const std::string& file, std::string_view what,
                  std::string_view a_name, std::string_view b_name) {
  if (points.empty()) throw InputError(fmt::format("{}: no {} rows", file, what));
  std::sort(points.begin(), points.end());
  Grid3 g;
  std::vector<double> as, bs;
  as.reserve(points.size());
  bs.reserve(points.size());
  for (const Point& p : points) {
    as.push_back(p.a);
    bs.push_back(p.b);
  }
  g.a = unique_sorted(std::move(as));
  g.b = unique_sorted(std::move(bs));
  g.lines.resize(g.a.size() * g.b.size());
  for (const Point& p : points) {
    const auto ia =
        static_cast<size_t>(std::lower_bound(g.a.begin(), g.a.end(), p.a) - g.a.begin());
    const auto ib =
        static_cast<size_t>(std::lower_bound(g.b.begin(), g.b.end(), p.b) - g.b.begin());
    Line& l = g.lines[ia * g.b.size() + ib];
    if (!l.x.empty() && l.x.back() == p.x) continue;  // duplicate row: the first one counts
    l.x.push_back(p.x);
    l.ms.push_back(p.ms);
  }
  for (size_t ia = 0; ia < g.a.size(); ++ia)
    for (size_t ib = 0; ib < g.b.size(); ++ib)
      if (g.lines[ia * g.b.size() + ib].x.empty())
        throw InputError(fmt::format("{}: incomplete {} grid: no rows with {}={} and {}={}", file,
                                     what, a_name, g.a[ia], b_name, g.b[ib]));
  return g;
}

Grid2 to_grid2(Grid3 g) {
  Grid2 out;
  out.outer = std::move(g.b);
  out.lines = std::move(g.lines);
  return out;
}

int as_int(double v) {
  return static_cast<int>(std::lround(v));
}

/// Bytes per element of a KV-cache dtype column value; 0 for formats without a table here.
int kv_bytes(std::string_view name) {
  if (name == "bfloat16" || name == "float16" || name == "half") return 2;
  if (name == "fp8") return 1;
  return 0;
}

/// Reads an attention table into one grid per head configuration: batch outside, `x_column`
/// (step for decode, isl for prefill) inside. Sliding-window rows are skipped (flat in
/// context, a different kernel path).
std::map<HeadKey, Grid2> load_attention(const fs::path& path, std::string_view x_column) {
  const Csv csv(path);
  const size_t batch = csv.column("batch_size"), heads = csv.column("num_heads"),
               kv_heads = csv.column("num_key_value_heads"), head_dim = csv.column("head_dim"),
               kv_dtype = csv.column("kv_cache_dtype"), x = csv.column(x_column),
               latency = csv.column("latency");
  // Older tables (A100, vLLM 0.14) have no window_size column: full attention only.
  const std::optional<size_t> window = csv.find_column("window_size");
  std::map<HeadKey, std::vector<Point>> points;
  csv.for_each([&](const Csv::Row& r) {
    if (window && csv.number(r, *window) != 0) return;
    const int bpe = kv_bytes(r.fields[kv_dtype]);
    if (bpe == 0) return;
    const HeadKey key{as_int(csv.number(r, heads)), as_int(csv.number(r, kv_heads)),
                      as_int(csv.number(r, head_dim)), bpe};
    points[key].push_back(
        Point{0, csv.number(r, batch), csv.number(r, x), csv.latency_ms(r, latency)});
  });
  std::map<HeadKey, Grid2> out;
  for (auto& [key, p] : points)
    out.emplace(key,
                to_grid2(build_grid3(std::move(p), path.string(), "attention", "", "batch_size")));
  return out;
}

std::map<int, Line> load_allreduce(const Csv& csv, std::string_view filter_column,
                                   std::string_view filter_value, std::string_view dtype_column) {
  const size_t filter = csv.column(filter_column), dtype = csv.column(dtype_column),
               n = csv.column("num_gpus"), size = csv.column("message_size"),
               latency = csv.column("latency");
  std::map<int, std::vector<Point>> points;
  csv.for_each([&](const Csv::Row& r) {
    if (r.fields[filter] != filter_value || kv_bytes(r.fields[dtype]) != 2) return;
    // message_size counts 16-bit elements.
    points[as_int(csv.number(r, n))].push_back(
        Point{0, 0, 2 * csv.number(r, size), csv.latency_ms(r, latency)});
  });
  std::map<int, Line> out;
  for (auto& [gpus, p] : points)
    out.emplace(
        gpus,
        std::move(
            build_grid3(std::move(p), csv.path().string(), "all-reduce", "", "").lines.front()));
  return out;
}

/// The table for a head configuration, or the nearest measured one and the factor to scale its
/// times by. `decode`: nearest by KV bytes per token, then query heads; scale by KV bytes.
/// Prefill: nearest by query heads x head_dim, then KV heads; scale by query heads x head_dim.
const Grid2& nearest(const std::map<HeadKey, Grid2>& tables, const HeadKey& want, bool decode,
                     double* scale) {
  *scale = 1;
  if (auto it = tables.find(want); it != tables.end()) return it->second;
  const auto [h, kvh, hd, bpe] = want;
  const double want_primary = decode ? double(kvh) * hd * bpe : double(h) * hd;
  const double want_secondary = decode ? double(h) : double(kvh) * hd * bpe;
  const Grid2* best = nullptr;
  double best_distance = std::numeric_limits<double>::infinity();
  for (const auto& [key, grid] : tables) {
    const auto [kh, kkvh, khd, kbpe] = key;
    const double primary = decode ? double(kkvh) * khd * kbpe : double(kh) * khd;
    const double secondary = decode ? double(kh) : double(kkvh) * khd * kbpe;
    // The primary ratio dominates; the secondary only breaks ties among equal primaries.
    const double distance = 1e3 * std::abs(std::log(primary / want_primary)) +
                            std::abs(std::log(secondary / want_secondary)) +
                            (kbpe == bpe ? 0 : 1e6);
    if (distance < best_distance) {
      best_distance = distance;
      best = &grid;
      *scale = want_primary / primary;
    }
  }
  return *best;
}

}  // namespace

// ---------------------------------------------------------------------------------------

KernelDb KernelDb::load(const fs::path& dir) {
  const auto gemm = newest(dir / "gemm", 2, "gemm_perf.csv");
  if (!gemm) throw InputError(fmt::format("no gemm_perf.csv under {}", dir.string()));
  const auto decode = newest(dir / "attention", 2, "generation_attention_perf.csv");
  if (!decode)
    throw InputError(fmt::format("no generation_attention_perf.csv under {}", dir.string()));
  const auto prefill = newest(dir / "attention", 2, "context_attention_perf.csv");
  if (!prefill)
    throw InputError(fmt::format("no context_attention_perf.csv under {}", dir.string()));

  KernelDb db;
  {
    const Csv csv(*gemm);
    const size_t dtype = csv.column("gemm_dtype"), m = csv.column("m"), n = csv.column("n"),
                 k = csv.column("k"), latency = csv.column("latency"),
                 device = csv.column("device");
    std::vector<Point> bf16, fp8;
    bf16.reserve(1 << 16);
    fp8.reserve(1 << 16);
    csv.for_each([&](const Csv::Row& r) {
      if (db.device_.empty()) db.device_ = std::string(r.fields[device]);
      const std::string_view d = r.fields[dtype];
      std::vector<Point>* into = d == "bfloat16" ? &bf16 : d == "fp8" ? &fp8 : nullptr;
      if (!into) return;  // fp8_block and others: not a format the cost model prices
      into->push_back(
          Point{csv.number(r, m), csv.number(r, n), csv.number(r, k), csv.latency_ms(r, latency)});
    });
    db.gemm_bf16_ = build_grid3(std::move(bf16), gemm->string(), "bfloat16 GEMM", "m", "n");
    if (!fp8.empty())
      db.gemm_fp8_ = build_grid3(std::move(fp8), gemm->string(), "fp8 GEMM", "m", "n");
    db.sources_.push_back(*gemm);
  }
  db.decode_ = load_attention(*decode, "step");
  db.prefill_ = load_attention(*prefill, "isl");
  if (db.decode_.empty())
    throw InputError(fmt::format("{}: no full-attention rows", decode->string()));
  if (db.prefill_.empty())
    throw InputError(fmt::format("{}: no full-attention rows", prefill->string()));
  db.sources_.push_back(*prefill);
  db.sources_.push_back(*decode);
  if (const auto nccl = newest(dir / "comm" / "nccl", 1, "nccl_perf.csv")) {
    db.nccl_ = load_allreduce(Csv(*nccl), "op_name", "all_reduce", "nccl_dtype");
    db.sources_.push_back(*nccl);
  }
  if (const auto custom = newest(dir / "comm" / "vllm", 1, "custom_allreduce_perf.csv")) {
    db.custom_ = load_allreduce(Csv(*custom), "backend", "vllm_graph", "allreduce_dtype");
    db.sources_.push_back(*custom);
  }
  return db;
}

std::shared_ptr<const KernelDb> KernelDb::load_shared(const fs::path& dir) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const KernelDb>> loaded;
  std::error_code ec;
  fs::path key = fs::weakly_canonical(dir, ec);
  if (ec) key = dir;
  const std::lock_guard<std::mutex> lock(mutex);
  auto& slot = loaded[key.string()];
  if (!slot) slot = std::make_shared<const KernelDb>(load(dir));
  return slot;
}

bool KernelDb::supports_gemm(DType weights, DType activations) const {
  const bool act16 = activations == DType::kBf16 || activations == DType::kFp16;
  if (!act16) return false;
  if (weights == DType::kBf16 || weights == DType::kFp16) return true;
  return weights == DType::kFp8 && !gemm_fp8_.lines.empty();
}

double KernelDb::gemm_time_s(double m, double n, double k, DType dtype) const {
  const Grid3& g = dtype == DType::kFp8 && !gemm_fp8_.lines.empty() ? gemm_fp8_ : gemm_bf16_;
  return eval(g, m, n, k) * 1e-3;
}

bool KernelDb::supports_kv(DType kv) const {
  return kv == DType::kBf16 || kv == DType::kFp16 || kv == DType::kFp8;
}

double KernelDb::decode_attention_time_s(double batch, double context_tokens, int num_heads,
                                         int num_kv_heads, int head_dim, DType kv) const {
  double scale = 1;
  const HeadKey want{num_heads, num_kv_heads, head_dim, as_int(bytes_per_element(kv))};
  const Grid2& g = nearest(decode_, want, true, &scale);
  return scale * eval(g, batch, context_tokens) * 1e-3;
}

double KernelDb::prefill_attention_time_s(double batch, double isl, int num_heads, int num_kv_heads,
                                          int head_dim) const {
  double scale = 1;
  const Grid2& g = nearest(prefill_, HeadKey{num_heads, num_kv_heads, head_dim, 2}, false, &scale);
  return scale * eval(g, batch, isl) * 1e-3;
}

bool KernelDb::measured_on(std::string_view gpu_name, double memory_bytes) const {
  auto tokens = [](std::string_view text) {
    std::vector<std::string> out;
    std::string word;
    for (const char ch : text) {
      if (std::isalnum(static_cast<unsigned char>(ch))) {
        word += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      } else if (!word.empty()) {
        out.push_back(std::move(word));
        word.clear();
      }
    }
    if (!word.empty()) out.push_back(std::move(word));
    return out;
  };
  const std::vector<std::string> device = tokens(device_);
  const std::vector<std::string> name = tokens(gpu_name);
  if (name.empty()) return false;
  // The model is the name's first word, or its second after a brand ("RTX-4090").
  const std::string& model = name.size() > 1 && name[0] == "RTX" ? name[1] : name[0];
  if (std::find(device.begin(), device.end(), model) == device.end()) return false;
  for (const std::string& t : device) {
    // "80GB": the device states its memory; it must be this GPU's (within 10%).
    if (t.size() > 2 && t.ends_with("GB") &&
        std::all_of(t.begin(), t.end() - 2, [](char c) { return std::isdigit(c) != 0; })) {
      const double stated_bytes = std::stod(t.substr(0, t.size() - 2)) * 1e9;
      if (std::fabs(stated_bytes - memory_bytes) > 0.1 * stated_bytes) return false;
    }
  }
  return true;
}

bool KernelDb::has_allreduce(int n_gpus) const {
  return nccl_.count(n_gpus) > 0 || custom_.count(n_gpus) > 0;
}

double KernelDb::allreduce_time_s(int n_gpus, double bytes) const {
  double ms = std::numeric_limits<double>::infinity();
  if (auto it = nccl_.find(n_gpus); it != nccl_.end()) ms = std::min(ms, eval(it->second, bytes));
  if (auto it = custom_.find(n_gpus); it != custom_.end())
    ms = std::min(ms, eval(it->second, bytes));
  return ms * 1e-3;
}

}  // namespace servesim

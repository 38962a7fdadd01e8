#pragma once
/// Named factories, filled explicitly by register_builtin_*() calls (static-initialisation
/// registration can be dropped silently by a static-library link). An unknown name is an
/// input error that lists the valid ones.

#include <fmt/format.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sim/json_reader.h"

namespace servesim {

template <typename Product, typename... Args>
class Registry {
 public:
  using Factory = std::function<std::unique_ptr<Product>(Args...)>;

  explicit Registry(std::string kind) : kind_(std::move(kind)) {}

  /// `keys`: the settings this entry reads from its configuration object. Keys of the other
  /// entries are accepted but ignored when this one is chosen, so that switching policy with
  /// one `--set .../name=...` keeps a scenario valid, while a misspelt key is still an error.
  void add(std::string name, std::string description, Factory factory,
           std::vector<std::string> keys = {}) {
    entries_[std::move(name)] = Entry{std::move(description), std::move(factory), std::move(keys)};
  }

  /// Marks every key of every entry as known in `config`.
  void allow_all_keys(JsonObject& config) const {
    for (const auto& [name, entry] : entries_)
      for (const auto& key : entry.keys) config.allow(key);
  }

  /// `where` is the JSON value holding the name, for the error message.
  std::unique_ptr<Product> create(std::string_view name, const JsonValue& where,
                                  Args... args) const {
    auto it = entries_.find(std::string(name));
    if (it == entries_.end())
      where.fail(fmt::format("unknown {} '{}'; valid: {}", kind_, name, fmt::join(names(), ", ")));
    return it->second.factory(std::forward<Args>(args)...);
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, entry] : entries_) out.push_back(name);
    return out;
  }
  const std::string& description(const std::string& name) const {
    return entries_.at(name).description;
  }
  const std::string& kind() const { return kind_; }

 private:
  struct Entry {
    std::string description;
    Factory factory;
    std::vector<std::string> keys;
  };
  std::string kind_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace servesim

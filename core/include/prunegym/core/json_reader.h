#pragma once
/// Strict reading of JSON config objects: every key is typed, and keys nobody asked for are
/// errors that name the full key path. Used by the env config and the agents' options.

#include <prunegym/core/errors.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace prunegym {

namespace detail {
using json = nlohmann::json;

inline std::string type_name(const json& v) {
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  return std::string("a ") + v.type_name();
}

}  // namespace detail

/// Reads one JSON object key by key; finish() rejects the keys nobody asked for.
class ObjectReader {
  using json = nlohmann::json;

 public:
  ObjectReader(const json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) throw ConfigError(where() + "expected an object, got " + detail::type_name(j_));
  }

  std::string key_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  const json* find(const std::string& key) {
    known_.insert(key);
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }

  void get(const std::string& key, std::string& out) {
    if (const json* v = find(key)) {
      if (!v->is_string()) fail(key, "a string", *v);
      out = v->get<std::string>();
    }
  }
  void get(const std::string& key, double& out) {
    if (const json* v = find(key)) {
      if (!v->is_number()) fail(key, "a number", *v);
      out = v->get<double>();
    }
  }
  void get(const std::string& key, std::optional<double>& out) {
    if (const json* v = find(key)) {
      if (!v->is_number()) fail(key, "a number", *v);
      out = v->get<double>();
    }
  }
  void get(const std::string& key, int64_t& out) {
    if (const json* v = find(key)) {
      if (!v->is_number_integer()) fail(key, "an integer", *v);
      out = v->get<int64_t>();
    }
  }
  void get(const std::string& key, uint64_t& out) {
    if (const json* v = find(key)) {
      if (!v->is_number_integer() || v->get<int64_t>() < 0) fail(key, "a non-negative integer", *v);
      out = v->get<uint64_t>();
    }
  }
  void get(const std::string& key, bool& out) {
    if (const json* v = find(key)) {
      if (!v->is_boolean()) fail(key, "true or false", *v);
      out = v->get<bool>();
    }
  }
  void get(const std::string& key, std::vector<std::string>& out) {
    if (const json* v = find(key)) {
      if (!v->is_array()) fail(key, "a list of strings", *v);
      out.clear();
      for (const auto& e : *v) {
        if (!e.is_string()) fail(key, "a list of strings", *v);
        out.push_back(e.get<std::string>());
      }
    }
  }
  void get(const std::string& key, std::vector<double>& out) {
    if (const json* v = find(key)) {
      if (!v->is_array()) fail(key, "a list of numbers", *v);
      out.clear();
      for (const auto& e : *v) {
        if (!e.is_number()) fail(key, "a list of numbers", *v);
        out.push_back(e.get<double>());
      }
    }
  }
  void get(const std::string& key, std::vector<int64_t>& out) {
    if (const json* v = find(key)) {
      if (!v->is_array()) fail(key, "a list of integers", *v);
      out.clear();
      for (const auto& e : *v) {
        if (!e.is_number_integer()) fail(key, "a list of integers", *v);
        out.push_back(e.get<int64_t>());
      }
    }
  }
  /// A nested object; absent keys read as an empty object.
  ObjectReader child(const std::string& key) {
    static const json empty = json::object();
    const json* v = find(key);
    return ObjectReader(v ? *v : empty, key_path(key));
  }
  /// The keys not read so far, as an object (for user-defined parameters).
  json rest() const {
    json out = json::object();
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!known_.count(it.key())) out[it.key()] = it.value();
    return out;
  }
  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!known_.count(it.key())) {
        std::string list;
        for (const auto& k : known_) list += (list.empty() ? "" : ", ") + k;
        throw ConfigError("unknown config key '" + key_path(it.key()) + "' (known keys here: " + list + ")");
      }
    }
  }

 private:
  std::string where() const { return path_.empty() ? "config: " : path_ + ": "; }
  [[noreturn]] void fail(const std::string& key, const std::string& expected, const json& got) const {
    throw ConfigError("config key '" + key_path(key) + "' must be " + expected + ", got " + detail::type_name(got) +
                      " (" + got.dump() + ")");
  }

  const json& j_;
  std::string path_;
  std::set<std::string> known_;
};

}  // namespace prunegym

#pragma once
/// Error types shared by every prunegym layer. Each names the problem and, where one exists, the fix.

#include <stdexcept>
#include <string>

namespace prunegym {

/// Base of all prunegym errors; `code()` is the stable identifier the bridge sends on the wire.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  virtual const char* code() const noexcept { return "internal"; }
};

/// A configuration key is unknown, has the wrong type, or holds an inconsistent value.
class ConfigError : public Error {
 public:
  using Error::Error;
  const char* code() const noexcept override { return "bad_argument"; }
};

/// A dataset or cache file is missing, truncated or malformed.
class DataError : public Error {
 public:
  using Error::Error;
  const char* code() const noexcept override { return "bad_argument"; }
};

/// An action outside the action space; the environment is left untouched.
class ActionError : public Error {
 public:
  using Error::Error;
  const char* code() const noexcept override { return "bad_argument"; }
};

/// step() after the episode ended, or before the first reset().
class EpisodeError : public Error {
 public:
  using Error::Error;
  const char* code() const noexcept override { return "episode_over"; }
};

/// A command option or argument is wrong (the CLI adds "see prunegym CMD --help").
class UsageError : public Error {
 public:
  using Error::Error;
  const char* code() const noexcept override { return "bad_argument"; }
};

}  // namespace prunegym

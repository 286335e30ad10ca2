#pragma once
/// Cooperative cancellation of long work (pretraining, retraining, fine-tuning, evaluation).
///
/// Whoever runs work on a thread opens a CancelScope with the flags that stop it (a session
/// closed, a server shutting down) and optionally a deadline; the training and evaluation loops
/// call check_cancelled() between batches, which throws Cancelled once a flag is set or the
/// deadline has passed. Without a scope check_cancelled() costs one thread-local read.

#include <prunegym/core/errors.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace prunegym {

/// The work was stopped from outside (wire code "cancelled"); whatever it was changing may be
/// half done.
class Cancelled : public Error {
 public:
  using Error::Error;
  const char* code() const noexcept override { return "cancelled"; }
};

/// Makes check_cancelled() on this thread watch `flags` (each set means "stop", with its reason)
/// and `deadline`, until the scope ends; scopes nest (the inner one adds to the outer).
class CancelScope {
 public:
  struct Flag {
    const std::atomic<bool>* set;
    std::string reason;
  };
  explicit CancelScope(std::vector<Flag> flags,
                       std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt,
                       std::string deadline_reason = "the work exceeded its time budget");
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

 private:
  const CancelScope* outer_;
  std::vector<Flag> flags_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::string deadline_reason_;
  friend void check_cancelled();
};

/// Throws Cancelled when a flag of an open scope on this thread is set or its deadline passed.
void check_cancelled();

}  // namespace prunegym

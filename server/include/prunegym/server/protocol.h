#pragma once
/// The wire protocol of the ZeroMQ bridge: JSON messages, one request one reply, versioned.
/// docs/protocol.md specifies every message; this header is its C++ side (both ends use it).

#include <prunegym/core/errors.h>
#include <prunegym/env/env.h>
#include <prunegym/env/spaces.h>

#include <nlohmann/json.hpp>

#include <string>

namespace prunegym {

constexpr int kProtocolVersion = 1;

/// Stable error codes sent in {"ok": false, "error": {"code": ..., "message": ...}}.
namespace codes {
constexpr const char* bad_json = "bad_json";
constexpr const char* unknown_command = "unknown_command";
constexpr const char* bad_argument = "bad_argument";
constexpr const char* no_session = "no_session";
constexpr const char* episode_over = "episode_over";
constexpr const char* limit = "limit";
constexpr const char* internal = "internal";
constexpr const char* cancelled = "cancelled";  ///< the work was stopped: session closed, budget, shutdown
constexpr const char* timeout = "timeout";      ///< client side only: no reply in time
}  // namespace codes

/// An error with a wire code; thrown by request handling, and by clients for error replies.
class ProtocolError : public Error {
 public:
  ProtocolError(std::string code, const std::string& message) : Error(message), code_(std::move(code)) {}
  const char* code() const noexcept override { return code_.c_str(); }

 private:
  std::string code_;
};

/// No reply within the client's timeout (the server is gone, stuck, or too slow).
class TimeoutError : public ProtocolError {
 public:
  explicit TimeoutError(const std::string& message) : ProtocolError(codes::timeout, message) {}
};

/// {"ok": false, "error": {...}} for an exception; prunegym errors keep their code.
nlohmann::json error_reply(const std::string& code, const std::string& message);

/// How observations travel in reset/step replies, chosen per session at `make`:
/// json - "observation": [numbers]; f32 - "observation_f32": base64 of the little-endian float32
/// values (lossless, since observations are float32, and cheaper to encode and decode).
enum class ObservationEncoding { json, f32 };
ObservationEncoding encoding_from_wire(const std::string& name);

nlohmann::json to_wire(const ResetResult& r, ObservationEncoding enc = ObservationEncoding::json);
nlohmann::json to_wire(const StepResult& r, ObservationEncoding enc = ObservationEncoding::json);
/// Both readers accept either encoding.
ResetResult reset_from_wire(const nlohmann::json& j);
StepResult step_from_wire(const nlohmann::json& j);

/// An action from JSON: an integer is a Discrete index, a list of numbers a Box value.
Action action_from_wire(const nlohmann::json& j);
nlohmann::json action_to_wire(const Action& a);

/// Base64 (RFC 4648, with padding) of float32 values in little-endian byte order, and back; decoding
/// throws ProtocolError(bad_json) for malformed input.
std::string encode_f32_base64(const Observation& values);
Observation decode_f32_base64(const std::string& text);

/// Throws ProtocolError(bad_argument) naming the key when j[key] is missing or of the wrong type.
const nlohmann::json& require_field(const nlohmann::json& j, const std::string& key, nlohmann::json::value_t type);

/// Throws ProtocolError carrying the reply's error when a reply is not ok.
void check_reply(const nlohmann::json& reply);

}  // namespace prunegym

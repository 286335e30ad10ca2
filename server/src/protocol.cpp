#include <prunegym/server/protocol.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace prunegym {

nlohmann::json error_reply(const std::string& code, const std::string& message) {
  return {{"ok", false}, {"v", kProtocolVersion}, {"error", {{"code", code}, {"message", message}}}};
}

namespace {

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void put_observation(nlohmann::json& j, const Observation& obs, ObservationEncoding enc) {
  if (enc == ObservationEncoding::f32)
    j["observation_f32"] = encode_f32_base64(obs);
  else
    j["observation"] = obs;
}

Observation get_observation(const nlohmann::json& j) {
  auto it = j.find("observation_f32");
  if (it != j.end()) return decode_f32_base64(it->get<std::string>());
  return j.at("observation").get<Observation>();
}

}  // namespace

ObservationEncoding encoding_from_wire(const std::string& name) {
  if (name == "json") return ObservationEncoding::json;
  if (name == "f32") return ObservationEncoding::f32;
  throw ProtocolError(codes::bad_argument, "unknown observation encoding '" + name + "' (known: json, f32)");
}

std::string encode_f32_base64(const Observation& values) {
  std::string bytes(values.size() * 4, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &values[i], 4);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<char>((u >> (8 * b)) & 0xFF);
  }
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = 0;
    for (size_t k = 0; k < 3; ++k) v = (v << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (size_t k = 0; k < 4; ++k) out += k <= n ? kBase64[(v >> (18 - 6 * k)) & 0x3F] : '=';
  }
  return out;
}

Observation decode_f32_base64(const std::string& text) {
  if (text.size() % 4 != 0)
    throw ProtocolError(codes::bad_json, "observation_f32 is not base64 (length not a multiple of 4)");
  std::string bytes;
  bytes.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      int d;
      if (c >= 'A' && c <= 'Z')
        d = c - 'A';
      else if (c >= 'a' && c <= 'z')
        d = c - 'a' + 26;
      else if (c >= '0' && c <= '9')
        d = c - '0' + 52;
      else if (c == '+')
        d = 62;
      else if (c == '/')
        d = 63;
      else if (c == '=' && i + 4 == text.size() && k >= 2) {
        d = 0;
        ++pad;
      } else
        throw ProtocolError(codes::bad_json,
                            "observation_f32 is not base64 (bad character at " + std::to_string(i + k) + ")");
      if (pad && c != '=') throw ProtocolError(codes::bad_json, "observation_f32 is not base64 (data after padding)");
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    for (int k = 0; k < 3 - pad; ++k) bytes += static_cast<char>((v >> (16 - 8 * k)) & 0xFF);
  }
  if (bytes.size() % 4 != 0) throw ProtocolError(codes::bad_json, "observation_f32 does not hold whole float32 values");
  Observation out(bytes.size() / 4);
  for (size_t i = 0; i < out.size(); ++i) {
    uint32_t u = 0;
    for (int b = 3; b >= 0; --b) u = (u << 8) | static_cast<unsigned char>(bytes[i * 4 + b]);
    std::memcpy(&out[i], &u, 4);
  }
  return out;
}

nlohmann::json to_wire(const ResetResult& r, ObservationEncoding enc) {
  nlohmann::json j{{"ok", true}, {"info", r.info}};
  put_observation(j, r.observation, enc);
  return j;
}

nlohmann::json to_wire(const StepResult& r, ObservationEncoding enc) {
  nlohmann::json j{
      {"ok", true}, {"reward", r.reward}, {"terminated", r.terminated}, {"truncated", r.truncated}, {"info", r.info}};
  put_observation(j, r.observation, enc);
  return j;
}

ResetResult reset_from_wire(const nlohmann::json& j) {
  try {
    return {get_observation(j), j.at("info").get<StepInfo>()};
  } catch (const nlohmann::json::exception& e) {
    throw ProtocolError(codes::bad_json, std::string("malformed reset reply: ") + e.what());
  }
}

StepResult step_from_wire(const nlohmann::json& j) {
  try {
    StepResult r;
    r.observation = get_observation(j);
    r.reward = j.at("reward").get<double>();
    r.terminated = j.at("terminated").get<bool>();
    r.truncated = j.at("truncated").get<bool>();
    r.info = j.at("info").get<StepInfo>();
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw ProtocolError(codes::bad_json, std::string("malformed step reply: ") + e.what());
  }
}

Action action_from_wire(const nlohmann::json& j) {
  if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    throw ProtocolError(codes::bad_argument,
                        "action " + j.dump() + " is far outside the action space (an index from 0)");
  if (j.is_number_integer()) return Action(j.get<int64_t>());
  if (j.is_number_float()) {
    const double v = j.get<double>();
    if (std::floor(v) == v && std::abs(v) < 1e15) return Action(static_cast<int64_t>(v));  // 3.0 from loose clients
    throw ProtocolError(codes::bad_argument,
                        "action " + j.dump() + " is not an integer index; send a list for a Box action");
  }
  if (j.is_array()) {
    std::vector<double> values;
    for (const auto& e : j) {
      if (!e.is_number()) throw ProtocolError(codes::bad_argument, "action list must hold numbers, got " + j.dump());
      values.push_back(e.get<double>());
    }
    if (values.empty()) throw ProtocolError(codes::bad_argument, "action list is empty");
    return Action::continuous(std::move(values));
  }
  throw ProtocolError(codes::bad_argument, "'action' must be an integer (Discrete) or a list of numbers (Box), got " +
                                               std::string(j.type_name()));
}

nlohmann::json action_to_wire(const Action& a) {
  if (a.is_discrete()) return a.index;
  return a.values;
}

namespace {

/// What a JSON value is, in the words an error message needs ("an integer", "a number", ...).
std::string describe_type(nlohmann::json::value_t type) {
  using T = nlohmann::json::value_t;
  switch (type) {
    case T::number_integer:
    case T::number_unsigned:
      return "an integer";
    case T::number_float:
      return "a number";
    case T::string:
      return "a string";
    case T::boolean:
      return "true or false";
    case T::object:
      return "an object";
    case T::array:
      return "an array";
    case T::null:
      return "null";
    default:
      return "a JSON value";
  }
}

/// A value as an error message shows it: short values in full, long ones cut.
std::string show_value(const nlohmann::json& v) {
  const std::string text = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return text.size() <= 40 ? text : text.substr(0, 37) + "...";
}

}  // namespace

const nlohmann::json& require_field(const nlohmann::json& j, const std::string& key, nlohmann::json::value_t type) {
  auto it = j.find(key);
  if (it == j.end()) throw ProtocolError(codes::bad_argument, "missing field '" + key + "'");
  const bool ok = type == nlohmann::json::value_t::number_integer ? it->is_number_integer()
                  : type == nlohmann::json::value_t::number_float ? it->is_number()
                                                                  : it->type() == type;
  if (!ok) {
    throw ProtocolError(codes::bad_argument, "field '" + key + "' must be " + describe_type(type) + ", got " +
                                                 show_value(*it) + " (" + describe_type(it->type()) + ")");
  }
  return *it;
}

void check_reply(const nlohmann::json& reply) {
  if (!reply.is_object()) throw ProtocolError(codes::bad_json, "the reply is not a JSON object");
  const auto ok = reply.find("ok");
  if (ok == reply.end() || !ok->is_boolean())
    throw ProtocolError(codes::bad_json, "the reply has no true/false 'ok' field: " + show_value(reply));
  if (ok->get<bool>()) return;
  // Every part of an error is optional to a reader: a malformed one still becomes a ProtocolError.
  const auto err = reply.find("error");
  auto text = [&](const char* key, const char* fallback) {
    if (err == reply.end() || !err->is_object()) return std::string(fallback);
    const auto it = err->find(key);
    return it != err->end() && it->is_string() ? it->get<std::string>() : std::string(fallback);
  };
  throw ProtocolError(text("code", codes::internal), text("message", "the server reported an error"));
}

}  // namespace prunegym

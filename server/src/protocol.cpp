#include <prunegym/server/protocol.h>

#include <cmath>

namespace prunegym {

nlohmann::json error_reply(const std::string& code, const std::string& message) {
  return {{"ok", false}, {"v", kProtocolVersion}, {"error", {{"code", code}, {"message", message}}}};
}

nlohmann::json to_wire(const ResetResult& r) {
  return {{"ok", true}, {"observation", r.observation}, {"info", r.info}};
}

nlohmann::json to_wire(const StepResult& r) {
  return {{"ok", true},
          {"observation", r.observation},
          {"reward", r.reward},
          {"terminated", r.terminated},
          {"truncated", r.truncated},
          {"info", r.info}};
}

ResetResult reset_from_wire(const nlohmann::json& j) {
  try {
    return {j.at("observation").get<Observation>(), j.at("info").get<StepInfo>()};
  } catch (const nlohmann::json::exception& e) {
    throw ProtocolError(codes::bad_json, std::string("malformed reset reply: ") + e.what());
  }
}

StepResult step_from_wire(const nlohmann::json& j) {
  try {
    StepResult r;
    r.observation = j.at("observation").get<Observation>();
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
  if (j.is_number_integer()) return Action(j.get<int64_t>());
  if (j.is_number_float()) {
    const double v = j.get<double>();
    if (std::floor(v) == v && std::abs(v) < 1e15) return Action(static_cast<int64_t>(v));  // 3.0 from loose clients
    throw ProtocolError(codes::bad_argument, "action " + j.dump() + " is not an integer index; send a list for a Box action");
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
  throw ProtocolError(codes::bad_argument,
                      "'action' must be an integer (Discrete) or a list of numbers (Box), got " + std::string(j.type_name()));
}

nlohmann::json action_to_wire(const Action& a) {
  if (a.is_discrete()) return a.index;
  return a.values;
}

const nlohmann::json& require_field(const nlohmann::json& j, const std::string& key, nlohmann::json::value_t type) {
  auto it = j.find(key);
  if (it == j.end()) throw ProtocolError(codes::bad_argument, "missing field '" + key + "'");
  const bool ok = type == nlohmann::json::value_t::number_integer
                      ? it->is_number_integer()
                      : type == nlohmann::json::value_t::number_float ? it->is_number() : it->type() == type;
  if (!ok) {
    nlohmann::json sample(type);
    throw ProtocolError(codes::bad_argument,
                        "field '" + key + "' must be " + sample.type_name() + ", got " + std::string(it->type_name()));
  }
  return *it;
}

void check_reply(const nlohmann::json& reply) {
  if (!reply.is_object()) throw ProtocolError(codes::bad_json, "the reply is not a JSON object");
  if (reply.value("ok", false)) return;
  const auto err = reply.value("error", nlohmann::json::object());
  throw ProtocolError(err.value("code", codes::internal), err.value("message", "the server reported an error"));
}

}  // namespace prunegym

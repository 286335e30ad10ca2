#include <prunegym/server/remote_env.h>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <chrono>
#include <fstream>
#include <sstream>

namespace prunegym {

struct RemoteEnv::Impl {
  zmq::context_t ctx{1};
  zmq::socket_t socket{ctx, zmq::socket_type::dealer};
  std::string endpoint;
  int64_t next_id = 1;
};

RemoteEnv::RemoteEnv(const std::string& endpoint, const nlohmann::json& make_request, RemoteEnvOptions options)
    : impl_(std::make_unique<Impl>()), options_(std::move(options)) {
  impl_->endpoint = endpoint;
  impl_->socket.set(zmq::sockopt::linger, 0);
  if (!options_.curve_server_key.empty()) {
    std::string pub = options_.curve_public_key, sec = options_.curve_secret_key;
    if (pub.empty() != sec.empty()) throw ConfigError("give both halves of the client's CURVE key pair, or neither");
    if (pub.empty()) {
      char p[41], k[41];
      if (zmq_curve_keypair(p, k) != 0) throw ConfigError("this libzmq has no CURVE support");
      pub = p;
      sec = k;
    }
    impl_->socket.set(zmq::sockopt::curve_serverkey, options_.curve_server_key);
    impl_->socket.set(zmq::sockopt::curve_publickey, pub);
    impl_->socket.set(zmq::sockopt::curve_secretkey, sec);
  }
  try {
    impl_->socket.connect(endpoint);
  } catch (const zmq::error_t& e) {
    throw ConfigError("cannot connect to " + endpoint + ": " + e.what());
  }
  const auto hello = call({{"cmd", "hello"}}, options_.timeout_ms);
  if (hello.value("protocol", -1) != kProtocolVersion)
    throw ProtocolError(codes::bad_argument, "the server at " + endpoint + " speaks protocol " +
                                                 hello.value("protocol", nlohmann::json(-1)).dump() + ", this client " +
                                                 std::to_string(kProtocolVersion));
  nlohmann::json req = make_request;
  req["cmd"] = "make";
  if (!req.contains("encoding")) req["encoding"] = options_.encoding;
  const auto made = call(req, options_.make_timeout_ms);
  session_ = made.at("session").get<std::string>();
  action_space_ = Space::from_json(made.at("action_space"));
  observation_space_ = Space::from_json(made.at("observation_space"));
  make_info_ = made.value("info", nlohmann::json::object());
}

std::unique_ptr<RemoteEnv> RemoteEnv::from_config(const std::string& endpoint, const nlohmann::json& config,
                                                  RemoteEnvOptions options) {
  return std::make_unique<RemoteEnv>(endpoint, nlohmann::json{{"config", config}}, std::move(options));
}

RemoteEnv::~RemoteEnv() {
  try {
    close();
  } catch (...) {
    // Best effort: the server expires idle sessions anyway.
  }
}

int64_t RemoteEnv::send_request(nlohmann::json request) {
  const int64_t id = impl_->next_id++;
  request["id"] = id;
  request["v"] = kProtocolVersion;
  const std::string payload = request.dump();
  impl_->socket.send(zmq::buffer(payload), zmq::send_flags::none);
  return id;
}

nlohmann::json RemoteEnv::receive_reply(int64_t id, int timeout_ms, const std::string& what) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::milliseconds(timeout_ms);
  if (options_.spin_us > 0) {  // busy-poll window: skips the sleep/wake-up of a blocking poll
    const auto spin_end = start + std::chrono::microseconds(options_.spin_us);
    zmq::pollitem_t item{impl_->socket.handle(), 0, ZMQ_POLLIN, 0};
    while (std::chrono::steady_clock::now() < spin_end && zmq::poll(&item, 1, std::chrono::milliseconds(0)) == 0) {
    }
  }
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    std::vector<zmq::pollitem_t> items{{impl_->socket.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, left);
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(impl_->socket, std::back_inserter(parts), zmq::recv_flags::dontwait)) continue;
    if (parts.empty()) continue;
    const auto reply = nlohmann::json::parse(parts.back().to_string(), nullptr, false);
    if (reply.is_discarded()) throw ProtocolError(codes::bad_json, "the server sent a reply that is not JSON");
    if (reply.value("id", nlohmann::json()) != id) continue;  // a late reply to an earlier, timed-out request
    check_reply(reply);
    return reply;
  }
  throw TimeoutError("no reply from " + impl_->endpoint + " to '" + what + "' within " + std::to_string(timeout_ms) +
                     " ms (is the server running and reachable?)");
}

nlohmann::json RemoteEnv::call(nlohmann::json request, int timeout_ms) {
  const std::string what = request.value("cmd", "?");
  return receive_reply(send_request(std::move(request)), timeout_ms, what);
}

ResetResult RemoteEnv::reset(const ResetOptions& options) {
  nlohmann::json req{{"cmd", "reset"}, {"session", session_}};
  if (options.seed) req["seed"] = *options.seed;
  if (!options.options.empty()) req["options"] = options.options;
  return reset_from_wire(call(req, options_.timeout_ms));
}

StepResult RemoteEnv::step(const Action& action) {
  return step_from_wire(
      call({{"cmd", "step"}, {"session", session_}, {"action", action_to_wire(action)}}, options_.timeout_ms));
}

std::string RemoteEnv::snapshot() {
  return call({{"cmd", "snapshot"}, {"session", session_}}, options_.timeout_ms).at("snapshot").get<std::string>();
}

void RemoteEnv::restore(const std::string& name, bool drop) {
  call({{"cmd", "restore"}, {"session", session_}, {"snapshot", name}, {"drop", drop}}, options_.timeout_ms);
}

void RemoteEnv::close() {
  if (session_.empty()) return;
  const std::string s = session_;
  session_.clear();
  call({{"cmd", "close"}, {"session", s}}, std::min(options_.timeout_ms, 5000));
}

}  // namespace prunegym

namespace prunegym {

RemoteVectorEnv::RemoteVectorEnv(const std::vector<std::string>& endpoints, const nlohmann::json& make_request,
                                 RemoteEnvOptions options) {
  if (endpoints.empty()) throw ConfigError("a vector env needs at least one endpoint");
  for (const auto& e : endpoints) envs_.push_back(std::make_unique<RemoteEnv>(e, make_request, options));
}

RemoteVectorEnv::RemoteVectorEnv(const std::vector<FleetEndpoint>& fleet, const nlohmann::json& make_request,
                                 RemoteEnvOptions options) {
  if (fleet.empty()) throw ConfigError("a vector env needs at least one endpoint");
  for (const auto& server : fleet) {
    RemoteEnvOptions mine = options;
    if (!server.curve_server_key.empty()) mine.curve_server_key = server.curve_server_key;
    envs_.push_back(std::make_unique<RemoteEnv>(server.endpoint, make_request, mine));
  }
}

std::vector<FleetEndpoint> read_endpoints_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot read the endpoints file " + path);
  std::vector<FleetEndpoint> fleet;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    std::istringstream words(line);
    std::string endpoint, extra;
    if (!(words >> endpoint) || endpoint[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    if (endpoint.find("://") == std::string::npos)
      throw ConfigError(where + "'" + endpoint + "' is not an endpoint (tcp://host:port, ipc://path)");
    FleetEndpoint server{endpoint, ""};
    while (words >> extra) {
      if (extra.rfind("curve=", 0) != 0 || extra.size() != 46)
        throw ConfigError(where + "unexpected '" + extra +
                          "' (a line is ENDPOINT [curve=40-character Z85 public key])");
      server.curve_server_key = extra.substr(6);
    }
    fleet.push_back(server);
  }
  if (fleet.empty()) throw ConfigError("the endpoints file " + path + " lists no servers");
  return fleet;
}

std::vector<ResetResult> RemoteVectorEnv::reset(std::optional<uint64_t> seed) {
  std::vector<int64_t> ids;
  for (size_t i = 0; i < envs_.size(); ++i) {
    nlohmann::json req{{"cmd", "reset"}, {"session", envs_[i]->session()}};
    if (seed) req["seed"] = *seed + i;
    ids.push_back(envs_[i]->send_request(req));
  }
  std::vector<ResetResult> out;
  for (size_t i = 0; i < envs_.size(); ++i)
    out.push_back(reset_from_wire(envs_[i]->receive_reply(ids[i], envs_[i]->timeout_ms(), "reset")));
  return out;
}

std::vector<StepResult> RemoteVectorEnv::step(const std::vector<Action>& actions) {
  if (actions.size() != envs_.size())
    throw ActionError("a vector step needs " + std::to_string(envs_.size()) + " actions, got " +
                      std::to_string(actions.size()));
  std::vector<int64_t> ids;
  for (size_t i = 0; i < envs_.size(); ++i)
    ids.push_back(envs_[i]->send_request(
        {{"cmd", "step"}, {"session", envs_[i]->session()}, {"action", action_to_wire(actions[i])}}));
  std::vector<StepResult> out;
  for (size_t i = 0; i < envs_.size(); ++i)
    out.push_back(step_from_wire(envs_[i]->receive_reply(ids[i], envs_[i]->timeout_ms(), "step")));
  return out;
}

}  // namespace prunegym

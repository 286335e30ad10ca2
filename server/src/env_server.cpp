#include <prunegym/env/json_reader.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/env/toy_env.h>
#include <prunegym/server/env_server.h>
#include <prunegym/server/protocol.h>

#include <boost/asio.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace prunegym {

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

const char* const kServerName = "prunegym 0.1.0";

}  // namespace

bool is_loopback_endpoint(const std::string& e) {
  if (e.rfind("ipc://", 0) == 0 || e.rfind("inproc://", 0) == 0) return true;
  if (e.rfind("tcp://", 0) != 0) return false;
  const std::string host = e.substr(6, e.rfind(':') == std::string::npos ? std::string::npos : e.rfind(':') - 6);
  return host.rfind("127.", 0) == 0 || host == "localhost" || host == "[::1]";
}

struct Session {
  Session(std::string session_id, std::unique_ptr<Env> environment, boost::asio::thread_pool& pool)
      : id(std::move(session_id)), env(std::move(environment)), strand(boost::asio::make_strand(pool)) {
    prune = dynamic_cast<PruneEnv*>(env.get());
    last_used_ms = now_ms();
  }
  std::string id;
  std::unique_ptr<Env> env;
  PruneEnv* prune = nullptr;  ///< set when the env supports snapshots
  ObservationEncoding encoding = ObservationEncoding::json;
  boost::asio::strand<boost::asio::thread_pool::executor_type> strand;
  std::mutex mu;  ///< held while the env is used
  std::atomic<int64_t> last_used_ms{0};
  std::atomic<int> pending{0};
  std::map<std::string, EnvSnapshot> snapshots;
  int64_t next_snapshot = 1;
};

struct EnvServer::Impl {
  explicit Impl(ServerOptions o) : opts(std::move(o)), pool(static_cast<size_t>(std::max(1, opts.workers))), rng(std::random_device{}()) {}

  ServerOptions opts;
  zmq::context_t ctx{1};
  std::unique_ptr<zmq::socket_t> router, pull, push, zap;
  std::vector<std::string> allowed_keys;  ///< 32-byte binary client keys (CURVE allow-list)
  std::mutex push_mu;
  std::string reply_endpoint;
  std::string bound;
  boost::asio::thread_pool pool;
  boost::asio::io_context io;
  std::atomic<bool> stopping{false};

  mutable std::mutex mu;  ///< guards sessions, reserved, rng
  std::map<std::string, std::shared_ptr<Session>> sessions;
  int64_t reserved = 0;
  std::mt19937_64 rng;

  std::mutex data_mu;
  std::map<std::string, std::weak_ptr<const DataSplits>> data_cache;

  void log(const std::string& line) const {
    if (opts.log) opts.log(line);
  }

  std::shared_ptr<Session> find(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = sessions.find(id);
    return it == sessions.end() ? nullptr : it->second;
  }

  std::shared_ptr<Session> require_session(const json& req) {
    const std::string id = require_field(req, "session", json::value_t::string).get<std::string>();
    auto s = find(id);
    if (!s) throw ProtocolError(codes::no_session, "no session '" + id + "' (closed, expired or never made); call make first");
    s->last_used_ms = now_ms();
    return s;
  }

  json dispatch(const std::string& cmd, const json& req);
  json make(const json& req);
  std::unique_ptr<Env> build_prune_env(const json& config_doc);
  void sweep_idle();
  void send_reply(const std::string& identity, bool delimiter, const std::string& payload);
};

json EnvServer::Impl::dispatch(const std::string& cmd, const json& req) {
  if (cmd == "hello") {
    return {{"protocol", kProtocolVersion},
            {"server", kServerName},
            {"commands", {"hello", "ping", "make", "reset", "step", "snapshot", "restore", "close"}},
            {"limits",
             {{"max_sessions", opts.max_sessions},
              {"max_message_bytes", opts.max_message_bytes},
              {"idle_timeout", opts.idle_timeout},
              {"max_snapshots", opts.max_snapshots},
              {"workers", opts.workers}}}};
  }
  if (cmd == "ping") return {{"pong", true}};
  if (cmd == "make") return make(req);
  if (cmd == "close") {
    const std::string id = require_field(req, "session", json::value_t::string).get<std::string>();
    std::lock_guard<std::mutex> lock(mu);
    if (!sessions.erase(id)) throw ProtocolError(codes::no_session, "no session '" + id + "' to close");
    log("session " + id + " closed");
    return {{"closed", id}};
  }
  if (cmd == "reset" || cmd == "step" || cmd == "snapshot" || cmd == "restore") {
    auto s = require_session(req);
    std::lock_guard<std::mutex> lock(s->mu);
    if (cmd == "reset") {
      ResetOptions o;
      if (req.contains("seed") && !req["seed"].is_null()) {
        const auto& seed = require_field(req, "seed", json::value_t::number_integer);
        if (!seed.is_number_unsigned() && seed.get<int64_t>() < 0)
          throw ProtocolError(codes::bad_argument, "field 'seed' must be an integer in [0, 2^64)");
        o.seed = seed.get<uint64_t>();
      }
      if (req.contains("options") && !req["options"].is_null()) o.options = require_field(req, "options", json::value_t::object);
      return to_wire(s->env->reset(o), s->encoding);
    }
    if (cmd == "step") {
      auto it = req.find("action");
      if (it == req.end()) throw ProtocolError(codes::bad_argument, "missing field 'action'");
      return to_wire(s->env->step(action_from_wire(*it)), s->encoding);
    }
    if (!s->prune) throw ProtocolError(codes::bad_argument, "this environment does not support snapshots");
    if (cmd == "snapshot") {
      if (static_cast<int64_t>(s->snapshots.size()) >= opts.max_snapshots)
        throw ProtocolError(codes::limit, "session holds " + std::to_string(s->snapshots.size()) +
                                              " snapshots already (limit " + std::to_string(opts.max_snapshots) +
                                              "); free one with restore {\"drop\": true}");
      const std::string name = "snap-" + std::to_string(s->next_snapshot++);
      s->snapshots.emplace(name, s->prune->snapshot());
      return {{"snapshot", name}};
    }
    const std::string name = require_field(req, "snapshot", json::value_t::string).get<std::string>();
    auto snap = s->snapshots.find(name);
    if (snap == s->snapshots.end()) throw ProtocolError(codes::bad_argument, "no snapshot '" + name + "' in this session");
    s->prune->restore(snap->second);
    if (req.value("drop", false)) s->snapshots.erase(snap);
    return {{"restored", name}};
  }
  throw ProtocolError(codes::unknown_command,
                      "unknown command '" + cmd + "' (commands: hello, ping, make, reset, step, snapshot, restore, close)");
}

std::unique_ptr<Env> EnvServer::Impl::build_prune_env(const json& doc) {
  if (doc.contains("cache_dir") && !(doc["cache_dir"].is_string() && doc["cache_dir"].get<std::string>().empty()))
    throw ProtocolError(codes::bad_argument, "config key 'cache_dir' is chosen by the server; leave it out");
  Config config = Config::from_json(doc);
  config.cache_dir = opts.cache_dir;
  if (source_reads_files(config.data.source)) {
    std::error_code ec;
    const fs::path path = fs::weakly_canonical(config.data.path, ec);
    bool allowed = false;
    std::string roots;
    for (const auto& root : opts.data_roots) {
      const fs::path r = fs::weakly_canonical(root, ec);
      const auto rel = path.lexically_relative(r);
      if (!rel.empty() && *rel.begin() != "..") allowed = true;
      roots += (roots.empty() ? "" : ", ") + r.string();
    }
    if (!allowed)
      throw ProtocolError(codes::bad_argument, "data.path " + path.string() + " is outside the server's data roots (" +
                                                   roots + "); start the server with --data-root to allow it");
  }
  // Sessions on the same data share one copy of it.
  std::shared_ptr<const DataSplits> data;
  {
    std::lock_guard<std::mutex> lock(data_mu);
    const std::string key = data_fingerprint(config.data);
    data = data_cache[key].lock();
    if (!data) {
      data = std::make_shared<const DataSplits>(load_data(config.data));
      data_cache[key] = data;
    }
  }
  return std::make_unique<PruneEnv>(config, PruneEnvHooks{opts.log, data});
}

json EnvServer::Impl::make(const json& req) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (static_cast<int64_t>(sessions.size()) + reserved >= opts.max_sessions)
      throw ProtocolError(codes::limit, "the server holds " + std::to_string(opts.max_sessions) +
                                            " sessions already (its limit); close one or wait for idle ones to expire");
    ++reserved;
  }
  struct Release {
    Impl* self;
    ~Release() {
      std::lock_guard<std::mutex> lock(self->mu);
      --self->reserved;
    }
  } release{this};

  const ObservationEncoding encoding =
      req.contains("encoding") ? encoding_from_wire(require_field(req, "encoding", json::value_t::string).get<std::string>())
                               : ObservationEncoding::json;
  const std::string kind = req.contains("kind") ? require_field(req, "kind", json::value_t::string).get<std::string>() : "prune";
  std::unique_ptr<Env> env;
  if (kind == "prune") {
    env = build_prune_env(require_field(req, "config", json::value_t::object));
  } else if (kind == "toy") {
    ToyEnvOptions o;
    static const json empty = json::object();
    ObjectReader r(req.contains("toy") ? require_field(req, "toy", json::value_t::object) : empty, "toy");
    r.get("steps", o.steps);
    r.get("actions", o.actions);
    r.get("sparse", o.sparse);
    r.get("observation_size", o.observation_size);
    r.finish();
    if (o.observation_size > 1 << 16 || o.steps > 1 << 20 || o.actions > 1 << 16)
      throw ProtocolError(codes::limit, "toy env sizes are capped (observation_size 65536, steps 2^20, actions 65536)");
    env = std::make_unique<ToyEnv>(o);
  } else {
    throw ProtocolError(codes::bad_argument, "unknown env kind '" + kind + "' (known: prune, toy)");
  }

  json info = json::object();
  if (auto* p = dynamic_cast<PruneEnv*>(env.get())) {
    info = {{"layers", p->episode_layers()},
            {"episode_length", p->episode_length()},
            {"dense_accuracy", p->dense_accuracy()},
            {"dense_test_accuracy", p->dense().test_accuracy},
            {"target_accuracy", p->reward_setup().target_accuracy},
            {"target_sparsity", p->reward_setup().target_sparsity}};
  }
  json reply{{"action_space", env->action_space().to_json()}, {"observation_space", env->observation_space().to_json()},
             {"kind", kind}, {"info", info}, {"encoding", encoding == ObservationEncoding::f32 ? "f32" : "json"}};
  std::lock_guard<std::mutex> lock(mu);
  std::ostringstream id;
  id << std::hex << rng() << rng();
  auto session = std::make_shared<Session>(id.str(), std::move(env), pool);
  session->encoding = encoding;
  sessions.emplace(session->id, session);
  reply["session"] = session->id;
  log("session " + session->id + " made (" + kind + ")");
  return reply;
}

void EnvServer::Impl::sweep_idle() {
  const int64_t limit_ms = static_cast<int64_t>(opts.idle_timeout * 1000.0);
  const int64_t now = now_ms();
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = sessions.begin(); it != sessions.end();) {
    if (it->second->pending == 0 && now - it->second->last_used_ms > limit_ms) {
      log("session " + it->first + " expired after " + std::to_string(opts.idle_timeout) + " s idle");
      it = sessions.erase(it);
    } else {
      ++it;
    }
  }
}

void EnvServer::Impl::send_reply(const std::string& identity, bool delimiter, const std::string& payload) {
  // Called from worker threads: the reply travels to the main thread over an inproc socket.
  std::array<zmq::const_buffer, 3> parts{zmq::buffer(identity), zmq::buffer(delimiter ? "1" : "0", 1), zmq::buffer(payload)};
  std::lock_guard<std::mutex> lock(push_mu);
  zmq::send_multipart(*push, parts);
}

EnvServer::EnvServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  if (impl_->opts.max_sessions < 1 || impl_->opts.workers < 0 || impl_->opts.max_message_bytes < 64 ||
      !(impl_->opts.idle_timeout > 0) || impl_->opts.max_snapshots < 0)
    throw ConfigError("server limits must be positive (max sessions, workers, message size, idle timeout)");
}

EnvServer::~EnvServer() {
  stop();
  impl_->pool.join();
}

size_t EnvServer::session_count() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->sessions.size();
}

void EnvServer::stop() { impl_->stopping = true; }

std::string EnvServer::handle(const std::string& payload) {
  json reply;
  json id;
  try {
    if (payload.size() > impl_->opts.max_message_bytes)
      throw ProtocolError(codes::limit, "request of " + std::to_string(payload.size()) + " bytes exceeds the limit of " +
                                            std::to_string(impl_->opts.max_message_bytes));
    json req = json::parse(payload, nullptr, /*allow_exceptions=*/false);
    if (req.is_discarded()) throw ProtocolError(codes::bad_json, "the request is not valid JSON");
    if (!req.is_object()) throw ProtocolError(codes::bad_json, "the request must be a JSON object");
    if (req.contains("id")) id = req["id"];
    if (req.contains("v") && req["v"] != kProtocolVersion)
      throw ProtocolError(codes::bad_argument, "protocol version " + req["v"].dump() + " is not supported; this server speaks " +
                                                   std::to_string(kProtocolVersion));
    const std::string cmd = require_field(req, "cmd", json::value_t::string).get<std::string>();
    reply = impl_->dispatch(cmd, req);
    reply["ok"] = true;
    reply["v"] = kProtocolVersion;
  } catch (const Error& e) {
    reply = error_reply(e.code(), e.what());
  } catch (const c10::Error& e) {
    reply = error_reply(codes::internal, std::string("LibTorch: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    reply = error_reply(codes::internal, e.what());
  }
  if (!id.is_null()) reply["id"] = id;
  return reply.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string EnvServer::bind() {
  auto& im = *impl_;
  const std::string& endpoint = im.opts.bind;
  if (!is_loopback_endpoint(endpoint) && !im.opts.allow_remote)
    throw ConfigError("refusing to bind " + endpoint + ": it is reachable from other machines; pass --allow-remote "
                      "(and consider CURVE keys) or bind tcp://127.0.0.1:PORT");
  im.router = std::make_unique<zmq::socket_t>(im.ctx, zmq::socket_type::router);
  im.router->set(zmq::sockopt::linger, 0);
  im.router->set(zmq::sockopt::router_mandatory, 0);
  // Hard cap far above the soft one: bigger messages are dropped by ZeroMQ before they cost memory.
  im.router->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(im.opts.max_message_bytes) * 4 + 4096);
  if (!im.opts.curve_secret_key.empty()) {
    if (im.opts.curve_secret_key.size() != 40) throw ConfigError("the CURVE secret key must be 40 Z85 characters");
    im.router->set(zmq::sockopt::curve_server, true);
    im.router->set(zmq::sockopt::curve_secretkey, im.opts.curve_secret_key);
    if (!im.opts.curve_client_keys.empty()) {
      for (const auto& key : im.opts.curve_client_keys) {
        std::string raw(32, '\0');
        if (key.size() != 40 || !zmq_z85_decode(reinterpret_cast<uint8_t*>(raw.data()), key.c_str()))
          throw ConfigError("client key '" + key + "' is not a 40-character Z85 CURVE public key");
        im.allowed_keys.push_back(raw);
      }
      // ZeroMQ asks this socket (the ZAP handler) whether each client key may connect.
      im.zap = std::make_unique<zmq::socket_t>(im.ctx, zmq::socket_type::rep);
      im.zap->set(zmq::sockopt::linger, 0);
      im.zap->bind("inproc://zeromq.zap.01");
    }
  } else if (!im.opts.curve_client_keys.empty()) {
    throw ConfigError("allowed client keys need CURVE: give the server secret key too");
  }
  try {
    im.router->bind(endpoint);
  } catch (const zmq::error_t& e) {
    throw ConfigError("cannot bind " + endpoint + ": " + e.what());
  }
  im.bound = im.router->get(zmq::sockopt::last_endpoint);
  std::ostringstream ep;
  ep << "inproc://prunegym-replies-" << this;
  im.reply_endpoint = ep.str();
  im.pull = std::make_unique<zmq::socket_t>(im.ctx, zmq::socket_type::pull);
  im.pull->set(zmq::sockopt::linger, 0);
  im.pull->bind(im.reply_endpoint);
  im.push = std::make_unique<zmq::socket_t>(im.ctx, zmq::socket_type::push);
  im.push->set(zmq::sockopt::linger, 0);
  im.push->connect(im.reply_endpoint);
  return im.bound;
}

void EnvServer::run() {
  auto& im = *impl_;
  if (!im.router) bind();

  // Timers and signals run on their own io_context thread.
  boost::asio::signal_set signals(im.io);
  if (im.opts.handle_signals) {
    signals.add(SIGINT);
    signals.add(SIGTERM);
    signals.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (!ec) {
        impl_->log("signal " + std::to_string(sig) + ": finishing in-flight requests and shutting down");
        stop();
      }
    });
  }
  boost::asio::steady_timer sweep(im.io);
  const auto period = std::chrono::milliseconds(std::clamp<int64_t>(static_cast<int64_t>(im.opts.idle_timeout * 250), 10, 1000));
  std::function<void()> arm = [&] {
    sweep.expires_after(period);
    sweep.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      im.sweep_idle();
      arm();
    });
  };
  arm();
  auto guard = boost::asio::make_work_guard(im.io);
  std::thread io_thread([&] { im.io.run(); });
  im.log("serving on " + im.bound + " (" + std::to_string(im.opts.workers) + " workers)");

  auto forward = [&](std::vector<zmq::message_t>& parts) {
    // parts: identity, delimiter flag, payload (from a worker).
    if (parts.size() != 3) return;
    std::vector<zmq::message_t> out;
    out.emplace_back(std::move(parts[0]));
    if (*parts[1].data<char>() == '1') out.emplace_back();
    out.emplace_back(std::move(parts[2]));
    zmq::send_multipart(*im.router, out, zmq::send_flags::dontwait);
  };

  // Replies sent from the serving thread itself (workers go through send_reply()).
  auto send_direct = [&](const std::string& identity, bool delimiter, const std::string& reply) {
    std::vector<zmq::message_t> out;
    out.emplace_back(identity.data(), identity.size());
    if (delimiter) out.emplace_back();
    out.emplace_back(reply.data(), reply.size());
    zmq::send_multipart(*im.router, out, zmq::send_flags::dontwait);
  };

  auto route = [&](const std::string& identity, bool delimiter, std::string payload) {
    if (im.opts.workers == 0) {  // inline mode: lowest latency, one request at a time
      send_direct(identity, delimiter, handle(payload));
      return;
    }
    const json light = json::parse(payload, nullptr, false);
    const std::string cmd = light.is_object() && light.contains("cmd") && light["cmd"].is_string() ? light["cmd"].get<std::string>() : "";
    if (cmd == "make") {
      boost::asio::post(im.pool, [this, identity, delimiter, payload = std::move(payload)] {
        impl_->send_reply(identity, delimiter, handle(payload));
      });
      return;
    }
    if (cmd == "reset" || cmd == "step" || cmd == "snapshot" || cmd == "restore" || cmd == "close") {
      std::shared_ptr<Session> s;
      if (light.contains("session") && light["session"].is_string()) s = im.find(light["session"].get<std::string>());
      if (s) {
        ++s->pending;
        boost::asio::post(s->strand, [this, s, identity, delimiter, payload = std::move(payload)] {
          const std::string reply = handle(payload);
          --s->pending;
          impl_->send_reply(identity, delimiter, reply);
        });
        return;
      }
    }
    // Cheap or invalid requests are answered at once.
    send_direct(identity, delimiter, handle(payload));
  };

  std::vector<zmq::pollitem_t> items{{im.router->handle(), 0, ZMQ_POLLIN, 0}, {im.pull->handle(), 0, ZMQ_POLLIN, 0}};
  if (im.zap) items.push_back({im.zap->handle(), 0, ZMQ_POLLIN, 0});
  while (!im.stopping) {
    try {
      zmq::poll(items, std::chrono::milliseconds(100));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      if (e.num() == ETERM) break;
      throw;
    }
    if (items[0].revents & ZMQ_POLLIN) {
      for (int i = 0; i < 256; ++i) {
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(*im.router, std::back_inserter(parts), zmq::recv_flags::dontwait)) break;
        if (parts.empty()) continue;
        const std::string identity = parts[0].to_string();
        size_t first = 1;
        const bool delimiter = parts.size() > 1 && parts[1].size() == 0;
        if (delimiter) first = 2;
        if (parts.size() - first != 1) {
          send_direct(identity, delimiter,
                      error_reply(codes::bad_json, "expected exactly one frame holding a JSON request, got " +
                                                       std::to_string(parts.size() - first))
                          .dump());
          continue;
        }
        route(identity, delimiter, parts[first].to_string());
      }
    }
    if (im.zap && (items[2].revents & ZMQ_POLLIN)) {
      // ZAP request: version, request id, domain, address, identity, mechanism, client key.
      std::vector<zmq::message_t> req;
      if (zmq::recv_multipart(*im.zap, std::back_inserter(req), zmq::recv_flags::dontwait) && req.size() >= 6) {
        const bool curve = req[5].to_string() == "CURVE" && req.size() >= 7;
        const bool allowed = curve && std::find(im.allowed_keys.begin(), im.allowed_keys.end(), req[6].to_string()) !=
                                          im.allowed_keys.end();
        if (!allowed) im.log("refused a client whose CURVE key is not on the allow-list");
        std::array<zmq::const_buffer, 6> reply{zmq::str_buffer("1.0"), zmq::buffer(req[1].data(), req[1].size()),
                                               allowed ? zmq::str_buffer("200") : zmq::str_buffer("400"),
                                               allowed ? zmq::str_buffer("OK") : zmq::str_buffer("client key not allowed"),
                                               zmq::str_buffer(""), zmq::str_buffer("")};
        zmq::send_multipart(*im.zap, reply);
      }
    }
    if (items[1].revents & ZMQ_POLLIN) {
      for (int i = 0; i < 256; ++i) {
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(*im.pull, std::back_inserter(parts), zmq::recv_flags::dontwait)) break;
        forward(parts);
      }
    }
  }

  // Shutdown: let in-flight work finish, deliver its replies, then stop the timers.
  im.pool.join();
  for (;;) {
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(*im.pull, std::back_inserter(parts), zmq::recv_flags::dontwait)) break;
    forward(parts);
  }
  guard.reset();
  im.io.stop();
  io_thread.join();
  {
    std::lock_guard<std::mutex> lock(im.mu);
    im.sessions.clear();
  }
  im.log("server stopped");
}

}  // namespace prunegym

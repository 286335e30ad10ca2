#include <prunegym/core/json_reader.h>
#include <prunegym/server/env_kinds.h>
#include <prunegym/server/env_server.h>
#include <prunegym/server/protocol.h>

#include "server_impl.h"

#include <zmq.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

namespace prunegym {

using json = nlohmann::json;

json EnvServer::Impl::dispatch(const std::string& cmd, const json& req, const std::string& client) {
  if (cmd == "hello") {
    return {{"protocol", kProtocolVersion},
            {"server", kServerName},
            {"commands", {"hello", "ping", "make", "reset", "step", "snapshot", "restore", "close"}},
            {"kinds", EnvKindRegistry::instance().names()},
            {"limits",
             {{"max_sessions", opts.max_sessions},
              {"max_message_bytes", opts.max_message_bytes},
              {"hard_message_bytes", hard_message_cap(opts.max_message_bytes)},
              {"work", opts.limits.to_json()},
              {"max_work_seconds", opts.max_work_seconds},
              {"max_sessions_per_client", opts.max_sessions_per_client},
              {"idle_timeout", opts.idle_timeout},
              {"max_snapshots", opts.max_snapshots},
              {"workers", opts.workers}}}};
  }
  if (cmd == "ping") return {{"pong", true}};
  if (cmd == "make") return make(req, client);
  if (cmd == "close") {
    const std::string id = require_field(req, "session", json::value_t::string).get<std::string>();
    if (!find(id)) throw ProtocolError(codes::no_session, "no session '" + id + "' to close");
    drop_session(id);
    log("session " + id + " closed");
    return {{"closed", id}};
  }
  if (cmd == "reset" || cmd == "step" || cmd == "snapshot" || cmd == "restore") {
    auto s = require_session(req);
    std::lock_guard<std::mutex> lock(s->mu);
    try {
      return cancellable(s.get(), [&] { return session_command(*s, cmd, req); });
    } catch (const Cancelled& e) {
      // Half-done work leaves the env in no defined state: the session ends with the request
      // (a close that cancelled it ends it itself, and answers ok).
      if (!s->closing) drop_session(s->id);
      log("session " + s->id + " cancelled: " + e.what());
      throw Cancelled(std::string(e.what()) + "; session " + s->id + " is closed, make a new one");
    }
  }
  throw ProtocolError(
      codes::unknown_command,
      "unknown command '" + cmd + "' (commands: hello, ping, make, reset, step, snapshot, restore, close)");
}

void EnvServer::Impl::drop_session(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu);
  auto it = sessions.find(id);
  if (it == sessions.end()) return;
  it->second->closing = true;
  sessions.erase(it);
}

json EnvServer::Impl::session_command(Session& session, const std::string& cmd, const json& req) {
  Session* s = &session;
  {
    if (cmd == "reset") {
      ResetOptions o;
      if (req.contains("seed") && !req["seed"].is_null()) {
        const auto& seed = require_field(req, "seed", json::value_t::number_integer);
        if (!seed.is_number_unsigned() && seed.get<int64_t>() < 0)
          throw ProtocolError(codes::bad_argument, "field 'seed' must be an integer in [0, 2^64)");
        o.seed = seed.get<uint64_t>();
      }
      if (req.contains("options") && !req["options"].is_null())
        o.options = require_field(req, "options", json::value_t::object);
      return to_wire(s->env->reset(o), s->encoding);
    }
    if (cmd == "step") {
      auto it = req.find("action");
      if (it == req.end()) throw ProtocolError(codes::bad_argument, "missing field 'action'");
      return to_wire(s->env->step(action_from_wire(*it)), s->encoding);
    }
    if (cmd == "snapshot") {
      if (static_cast<int64_t>(s->snapshots.size()) >= opts.max_snapshots)
        throw ProtocolError(codes::limit, "session holds " + std::to_string(s->snapshots.size()) +
                                              " snapshots already (limit " + std::to_string(opts.max_snapshots) +
                                              "); free one with restore {\"drop\": true}");
      const std::string name = "snap-" + std::to_string(s->next_snapshot++);
      auto state = s->env->save_state();
      if (!state) throw ProtocolError(codes::bad_argument, "this environment does not support snapshots");
      s->snapshots.emplace(name, std::move(state));
      return {{"snapshot", name}};
    }
    const std::string name = require_field(req, "snapshot", json::value_t::string).get<std::string>();
    auto snap = s->snapshots.find(name);
    if (snap == s->snapshots.end())
      throw ProtocolError(codes::bad_argument, "no snapshot '" + name + "' in this session");
    s->env->restore_state(*snap->second);
    if (req.value("drop", false)) s->snapshots.erase(snap);
    return {{"restored", name}};
  }
}

json EnvServer::Impl::make(const json& req, const std::string& client) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (static_cast<int64_t>(sessions.size()) + reserved >= opts.max_sessions)
      throw ProtocolError(codes::limit, "the server holds " + std::to_string(opts.max_sessions) +
                                            " sessions already (its limit); close one or wait for idle ones to expire");
    if (!client.empty()) {
      int64_t mine = reserved_by[client];
      for (const auto& [id, s] : sessions) mine += s->owner == client;
      if (mine >= opts.max_sessions_per_client)
        throw ProtocolError(codes::limit, "this client holds " + std::to_string(mine) +
                                              " sessions already (the limit "
                                              "per client is " +
                                              std::to_string(opts.max_sessions_per_client) +
                                              ", --max-sessions-per-client); close one first");
      ++reserved_by[client];
    }
    ++reserved;
  }
  struct Release {
    Impl* self;
    const std::string& client;
    ~Release() {
      std::lock_guard<std::mutex> lock(self->mu);
      --self->reserved;
      if (!client.empty() && --self->reserved_by[client] <= 0) self->reserved_by.erase(client);
    }
  } release{this, client};

  const ObservationEncoding encoding =
      req.contains("encoding")
          ? encoding_from_wire(require_field(req, "encoding", json::value_t::string).get<std::string>())
          : ObservationEncoding::json;
  const std::string kind =
      req.contains("kind") ? require_field(req, "kind", json::value_t::string).get<std::string>() : "prune";
  std::unique_ptr<Env> env = cancellable(nullptr, [&] { return EnvKindRegistry::instance().make(kind, req, kinds); });
  const json info = env->describe();
  json reply{{"action_space", env->action_space().to_json()},
             {"observation_space", env->observation_space().to_json()},
             {"kind", kind},
             {"info", info},
             {"encoding", encoding == ObservationEncoding::f32 ? "f32" : "json"}};
  std::lock_guard<std::mutex> lock(mu);
  std::ostringstream id;
  id << std::hex << rng() << rng();
  auto session = std::make_shared<Session>(id.str(), std::move(env), pool);
  session->encoding = encoding;
  session->owner = client;
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
      it->second->closing = true;
      it = sessions.erase(it);
    } else {
      ++it;
    }
  }
}

void EnvServer::Impl::send_reply(const std::string& identity, bool delimiter, const std::string& payload) {
  // Called from worker threads: the reply travels to the main thread over an inproc socket.
  std::array<zmq::const_buffer, 3> parts{zmq::buffer(identity), zmq::buffer(delimiter ? "1" : "0", 1),
                                         zmq::buffer(payload)};
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

namespace {

/// The top-level "id" of a request too large to hold as a document: one SAX pass that keeps
/// nothing but that value. Only scalar ids (strings up to 1 KiB) are found; "found" stays false
/// for anything else, and for text that breaks before the id.
struct TopLevelId : nlohmann::json_sax<json> {
  int depth = 0;
  bool at_id = false, found = false;
  json id;

  bool value(json v) {
    if (at_id && depth == 1) {
      id = std::move(v);
      found = true;
    }
    at_id = false;
    return true;
  }
  bool null() override { return value(nullptr); }
  bool boolean(bool b) override { return value(b); }
  bool number_integer(number_integer_t v) override { return value(v); }
  bool number_unsigned(number_unsigned_t v) override { return value(v); }
  bool number_float(number_float_t v, const string_t&) override { return value(v); }
  bool string(string_t& v) override { return v.size() <= 1024 ? value(v) : skip(); }
  bool binary(binary_t&) override { return skip(); }
  bool start_object(std::size_t) override { return nest(+1); }
  bool end_object() override { return nest(-1); }
  bool start_array(std::size_t) override { return nest(+1); }
  bool end_array() override { return nest(-1); }
  bool key(string_t& k) override {
    at_id = depth == 1 && k == "id";
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  bool skip() {
    at_id = false;
    return true;
  }
  bool nest(int by) {
    if (at_id && by > 0) at_id = false;  // an object or array id is not echoed
    depth += by;
    return true;
  }
};

}  // namespace

std::string EnvServer::handle(const std::string& payload, const std::string& client) {
  json reply;
  json id;
  bool has_id = false;
  try {
    if (payload.size() > impl_->opts.max_message_bytes) {
      TopLevelId finder;
      json::sax_parse(payload, &finder, json::input_format_t::json, /*strict=*/true);
      has_id = finder.found;
      id = finder.id;
      throw ProtocolError(codes::limit,
                          "request of " + std::to_string(payload.size()) + " bytes exceeds the limit of " +
                              std::to_string(impl_->opts.max_message_bytes) + " (the server's --max-message)");
    }
    json req = json::parse(payload, nullptr, /*allow_exceptions=*/false);
    if (req.is_discarded()) throw ProtocolError(codes::bad_json, "the request is not valid JSON");
    if (!req.is_object()) throw ProtocolError(codes::bad_json, "the request must be a JSON object");
    if (req.contains("id")) {
      id = req["id"];
      has_id = true;
    }
    if (req.contains("v") && req["v"] != kProtocolVersion)
      throw ProtocolError(codes::bad_argument, "protocol version " + req["v"].dump() +
                                                   " is not supported; this server speaks " +
                                                   std::to_string(kProtocolVersion));
    const std::string cmd = require_field(req, "cmd", json::value_t::string).get<std::string>();
    reply = impl_->dispatch(cmd, req, client);
    reply["ok"] = true;
    reply["v"] = kProtocolVersion;
  } catch (const Error& e) {
    reply = error_reply(e.code(), e.what());
  } catch (const c10::Error& e) {
    reply = error_reply(codes::internal, std::string("LibTorch: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    reply = error_reply(codes::internal, e.what());
  }
  if (has_id) reply["id"] = id;
  return reply.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace prunegym

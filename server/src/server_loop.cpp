#include "server_impl.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <sstream>
#include <thread>

namespace prunegym {

bool is_loopback_endpoint(const std::string& e) {
  if (e.rfind("ipc://", 0) == 0 || e.rfind("inproc://", 0) == 0) return true;
  if (e.rfind("tcp://", 0) != 0) return false;
  const std::string host = e.substr(6, e.rfind(':') == std::string::npos ? std::string::npos : e.rfind(':') - 6);
  return host.rfind("127.", 0) == 0 || host == "localhost" || host == "[::1]";
}

std::string EnvServer::bind() {
  auto& im = *impl_;
  const std::string& endpoint = im.opts.bind;
  if (!is_loopback_endpoint(endpoint) && !im.opts.allow_remote)
    throw ConfigError("refusing to bind " + endpoint +
                      ": it is reachable from other machines; pass --allow-remote "
                      "(and consider CURVE keys) or bind tcp://127.0.0.1:PORT");
  im.router = std::make_unique<zmq::socket_t>(im.ctx, zmq::socket_type::router);
  im.router->set(zmq::sockopt::linger, 0);
  im.router->set(zmq::sockopt::router_mandatory, 0);
  // Hard cap far above the soft one (max_message_bytes): requests between the two get a "limit"
  // reply with their id; bigger ones are dropped by ZeroMQ, with the connection, before they cost
  // memory.
  im.router->set(zmq::sockopt::maxmsgsize, hard_message_cap(im.opts.max_message_bytes));
  im.configure_curve();
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

void EnvServer::Impl::configure_curve() {
  if (!opts.curve_secret_key.empty()) {
    if (opts.curve_secret_key.size() != 40) throw ConfigError("the CURVE secret key must be 40 Z85 characters");
    router->set(zmq::sockopt::curve_server, true);
    router->set(zmq::sockopt::curve_secretkey, opts.curve_secret_key);
    if (!opts.curve_client_keys.empty()) {
      for (const auto& key : opts.curve_client_keys) {
        std::string raw(32, '\0');
        if (key.size() != 40 || !zmq_z85_decode(reinterpret_cast<uint8_t*>(raw.data()), key.c_str()))
          throw ConfigError("client key '" + key + "' is not a 40-character Z85 CURVE public key");
        allowed_keys.push_back(raw);
      }
      // ZeroMQ asks this socket (the ZAP handler) whether each client key may connect.
      zap = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::rep);
      zap->set(zmq::sockopt::linger, 0);
      zap->bind("inproc://zeromq.zap.01");
    }
  } else if (!opts.curve_client_keys.empty()) {
    throw ConfigError("allowed client keys need CURVE: give the server secret key too");
  }
}

void EnvServer::Impl::forward(std::vector<zmq::message_t>& parts) {
  if (parts.size() != 3) return;
  std::vector<zmq::message_t> out;
  out.emplace_back(std::move(parts[0]));
  if (*parts[1].data<char>() == '1') out.emplace_back();
  out.emplace_back(std::move(parts[2]));
  zmq::send_multipart(*router, out, zmq::send_flags::dontwait);
}

void EnvServer::Impl::send_direct(const std::string& identity, bool delimiter, const std::string& reply) {
  std::vector<zmq::message_t> out;
  out.emplace_back(identity.data(), identity.size());
  if (delimiter) out.emplace_back();
  out.emplace_back(reply.data(), reply.size());
  zmq::send_multipart(*router, out, zmq::send_flags::dontwait);
}

int64_t hard_message_cap(size_t max_message_bytes) {
  return std::max<int64_t>(int64_t{64} << 20, static_cast<int64_t>(max_message_bytes) * 4 + 4096);
}

std::string curve_public_key(const std::string& secret_z85) {
  char public_z85[41] = {};
  if (secret_z85.size() != 40 || zmq_curve_public(public_z85, secret_z85.c_str()) != 0)
    throw ConfigError("the CURVE secret key must be 40 Z85 characters (a key from zmq_curve_keypair)");
  return public_z85;
}

std::string advertised_endpoint(const std::string& bound) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || !*host) return bound;
  for (const std::string wildcard : {"tcp://0.0.0.0:", "tcp://*:", "tcp://[::]:"})
    if (bound.rfind(wildcard, 0) == 0) return "tcp://" + std::string(host) + ":" + bound.substr(wildcard.size());
  return bound;
}

void EnvServer::Impl::route(EnvServer& server, const std::string& identity, bool delimiter, std::string payload,
                            const std::string& client) {
  if (opts.workers == 0 || payload.size() > opts.max_message_bytes) {
    // Inline mode (lowest latency, one request at a time), or an oversized request: its "limit"
    // reply needs no worker.
    send_direct(identity, delimiter, server.handle(payload, client));
    return;
  }
  const json light = json::parse(payload, nullptr, false);
  const std::string cmd =
      light.is_object() && light.contains("cmd") && light["cmd"].is_string() ? light["cmd"].get<std::string>() : "";
  if (cmd == "make") {
    boost::asio::post(pool, [this, &server, identity, delimiter, client, payload = std::move(payload)] {
      send_reply(identity, delimiter, server.handle(payload, client));
    });
    return;
  }
  if (cmd == "reset" || cmd == "step" || cmd == "snapshot" || cmd == "restore" || cmd == "close") {
    std::shared_ptr<Session> s;
    if (light.contains("session") && light["session"].is_string()) s = find(light["session"].get<std::string>());
    if (s) {
      if (cmd == "close") s->closing = true;  // stop its running work now, not after it
      ++s->pending;
      boost::asio::post(s->strand, [this, &server, s, identity, delimiter, client, payload = std::move(payload)] {
        const std::string reply = server.handle(payload, client);
        --s->pending;
        send_reply(identity, delimiter, reply);
      });
      return;
    }
  }
  send_direct(identity, delimiter, server.handle(payload, client));  // cheap or invalid requests: at once
}

void EnvServer::Impl::read_requests(EnvServer& server) {
  for (int i = 0; i < 256; ++i) {
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(*router, std::back_inserter(parts), zmq::recv_flags::dontwait)) break;
    if (parts.empty()) continue;
    const std::string identity = parts[0].to_string();
    const bool delimiter = parts.size() > 1 && parts[1].size() == 0;
    const size_t first = delimiter ? 2 : 1;
    if (parts.size() - first != 1) {
      send_direct(identity, delimiter,
                  error_reply(codes::bad_json, "expected exactly one frame holding a JSON request, got " +
                                                   std::to_string(parts.size() - first))
                      .dump());
      continue;
    }
    // The client behind a request: its CURVE key when the allow-list (ZAP) vouched for it, else
    // the connection.
    const char* user = zmq_msg_gets(parts[first].handle(), "User-Id");
    const std::string client = user && *user ? std::string("key:") + user : "conn:" + identity;
    route(server, identity, delimiter, parts[first].to_string(), client);
  }
}

void EnvServer::Impl::answer_zap() {
  // ZAP request: version, request id, domain, address, identity, mechanism, client key.
  std::vector<zmq::message_t> req;
  if (!zmq::recv_multipart(*zap, std::back_inserter(req), zmq::recv_flags::dontwait) || req.size() < 6) return;
  const bool curve = req[5].to_string() == "CURVE" && req.size() >= 7;
  const bool allowed =
      curve && std::find(allowed_keys.begin(), allowed_keys.end(), req[6].to_string()) != allowed_keys.end();
  if (!allowed) log("refused a client whose CURVE key is not on the allow-list");
  // The user id (the client key in Z85) becomes the "User-Id" of the client's messages.
  std::string user(41, '\0');
  if (allowed) zmq_z85_encode(user.data(), reinterpret_cast<const uint8_t*>(req[6].data()), 32);
  user.resize(allowed ? 40 : 0);
  std::array<zmq::const_buffer, 6> reply{zmq::str_buffer("1.0"),
                                         zmq::buffer(req[1].data(), req[1].size()),
                                         allowed ? zmq::str_buffer("200") : zmq::str_buffer("400"),
                                         allowed ? zmq::str_buffer("OK") : zmq::str_buffer("client key not allowed"),
                                         zmq::buffer(user),
                                         zmq::str_buffer("")};
  zmq::send_multipart(*zap, reply);
}

void EnvServer::Impl::drain_replies() {
  for (int i = 0; i < 256; ++i) {
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(*pull, std::back_inserter(parts), zmq::recv_flags::dontwait)) break;
    forward(parts);
  }
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
  const auto period =
      std::chrono::milliseconds(std::clamp<int64_t>(static_cast<int64_t>(im.opts.idle_timeout * 250), 10, 1000));
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
    if (items[0].revents & ZMQ_POLLIN) im.read_requests(*this);
    if (im.zap && (items[2].revents & ZMQ_POLLIN)) im.answer_zap();
    if (items[1].revents & ZMQ_POLLIN) im.drain_replies();
  }

  // Shutdown: let in-flight work finish, deliver its replies, then stop the timers.
  im.pool.join();
  for (size_t before = 1; before;) {
    std::vector<zmq::message_t> parts;
    before = zmq::recv_multipart(*im.pull, std::back_inserter(parts), zmq::recv_flags::dontwait) ? 1 : 0;
    if (before) im.forward(parts);
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

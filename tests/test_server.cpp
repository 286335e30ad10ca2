// server/: the ZeroMQ bridge on loopback - protocol round trips, every error code, concurrent
// clients, idle expiry, clean shutdown - and agents running unchanged against RemoteEnv.

#include "helpers.h"
#include "server_helpers.h"

#include <prunegym/agents/factory.h>
#include <prunegym/agents/runner.h>
#include <prunegym/env/prune_env.h>
#include <prunegym/env/toy_env.h>
#include <prunegym/server/env_server.h>
#include <prunegym/server/remote_env.h>

#include <catch2/catch.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <cstring>
#include <fstream>
#include <thread>

using namespace prunegym;
using Catch::Matchers::Contains;
using json = nlohmann::json;
using test::TestServer;

namespace {

/// Raw DEALER exchange: sends frames, returns the reply JSON.
json raw_call(const std::string& endpoint, const std::vector<std::string>& frames, int timeout_ms = 5000) {
  zmq::context_t ctx;
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(endpoint);
  std::vector<zmq::const_buffer> parts;
  for (const auto& f : frames) parts.push_back(zmq::buffer(f));
  zmq::send_multipart(s, parts);
  std::vector<zmq::pollitem_t> items{{s.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, std::chrono::milliseconds(timeout_ms));
  if (!(items[0].revents & ZMQ_POLLIN)) return json{{"no_reply", true}};
  std::vector<zmq::message_t> reply;
  (void)zmq::recv_multipart(s, std::back_inserter(reply));
  return json::parse(reply.back().to_string());
}

std::string error_code(const json& reply) { return reply.at("error").at("code").get<std::string>(); }

const json kToy = {{"kind", "toy"}};

}  // namespace

TEST_CASE("a remote toy episode matches the same episode in-process", "[server]") {
  TestServer ts;
  RemoteEnv remote(ts.endpoint, kToy);
  ToyEnv local;
  CHECK(remote.action_space() == local.action_space());
  CHECK(remote.observation_space() == local.observation_space());
  auto r0 = remote.reset();
  CHECK(r0.observation == local.reset().observation);
  for (int64_t a : {1, 2, 0, 2}) {
    auto r = remote.step(Action(a));
    auto l = local.step(Action(a));
    CHECK(r.observation == l.observation);
    CHECK(r.reward == l.reward);
    CHECK(r.terminated == l.terminated);
  }
  CHECK(ts.server->session_count() == 1);
  remote.close();
  CHECK(ts.server->session_count() == 0);
}

TEST_CASE("the f32 observation encoding round-trips float32 values bit for bit", "[server][protocol]") {
  const Observation values{0.0f, -0.0f, 1.0f / 3.0f, -2.5e-38f, 3.4e38f, 0.89239997f, 7.0f};
  for (size_t n = 0; n <= values.size(); ++n) {  // every padding length
    const Observation v(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string text = encode_f32_base64(v);
    CHECK(text.size() == (4 * n + 2) / 3 * 4);
    const Observation back = decode_f32_base64(text);
    REQUIRE(back.size() == n);
    CHECK((n == 0 || std::memcmp(back.data(), v.data(), n * sizeof(float)) == 0));  // no memcmp on null data
  }
  CHECK(encode_f32_base64({1.0f}) == "AACAPw==");  // 0x3f800000 little-endian
  for (const std::string bad : {"AAC", "AAC*Pw==", "AA=APw==", "AACAPw=A", "AAAA"})
    CHECK_THROWS_AS(decode_f32_base64(bad), ProtocolError);
}

TEST_CASE("json and f32 sessions see the same observations", "[server][protocol]") {
  TestServer ts;
  const json toy{{"kind", "toy"}, {"toy", {{"observation_size", 9}}}};
  RemoteEnv a(ts.endpoint, toy, RemoteEnvOptions().set_encoding("json"));
  RemoteEnv b(ts.endpoint, toy, RemoteEnvOptions().set_encoding("f32").set_spin_us(100));
  CHECK(a.make_info().is_object());
  CHECK(a.reset().observation == b.reset().observation);
  for (int64_t act : {1, 2, 0}) CHECK(a.step(Action(act)).observation == b.step(Action(act)).observation);
  // A raw f32 session carries observation_f32 instead of observation; unknown encodings are refused.
  auto made = raw_call(ts.endpoint, {json{{"cmd", "make"}, {"kind", "toy"}, {"encoding", "f32"}}.dump()});
  CHECK(made.at("encoding") == "f32");
  auto reset = raw_call(ts.endpoint, {json{{"cmd", "reset"}, {"session", made.at("session")}}.dump()});
  CHECK(reset.contains("observation_f32"));
  CHECK_FALSE(reset.contains("observation"));
  auto bad = raw_call(ts.endpoint, {json{{"cmd", "make"}, {"kind", "toy"}, {"encoding", "msgpack"}}.dump()});
  CHECK(error_code(bad) == "bad_argument");
  CHECK_THAT(bad.at("error").at("message").get<std::string>(), Contains("json, f32"));
}

TEST_CASE("a remote PruneEnv session reports the same trajectory as a local one", "[server]") {
  TestServer ts;
  auto config = test::tiny_config();
  config.cache_dir.clear();
  auto remote = RemoteEnv::from_config(ts.endpoint, config.to_json());
  PruneEnv local(test::tiny_config());
  CHECK(remote->make_info().at("layers").size() == 3);
  ResetOptions o;
  o.seed = 5;
  CHECK(remote->reset(o).observation == local.reset(o).observation);
  for (int64_t a : {12, 4, 20}) {
    auto r = remote->step(Action(a));
    auto l = local.step(Action(a));
    CHECK(r.info.remaining == l.info.remaining);
    CHECK(r.info.layer == l.info.layer);
    CHECK(r.reward == Approx(l.reward).margin(0.02));  // server threads may differ in float summation order
  }
  // Snapshots live on the server.
  remote->reset(o);
  remote->step(Action(10));
  const auto snap = remote->snapshot();
  const auto a = remote->step(Action(10));
  remote->restore(snap);
  const auto b = remote->step(Action(10));
  CHECK(a.observation == b.observation);
}

TEST_CASE("every error code comes back as an error reply and the server keeps serving", "[server][errors]") {
  ServerOptions o;
  o.max_sessions = 2;
  o.max_message_bytes = 4096;
  o.data_roots = {"/usr/share/datasets"};
  TestServer ts(o);
  CHECK(error_code(raw_call(ts.endpoint, {"{not json"})) == "bad_json");
  CHECK(error_code(raw_call(ts.endpoint, {"[1, 2]"})) == "bad_json");
  CHECK(error_code(raw_call(ts.endpoint, {R"({"cmd": "dance"})"})) == "unknown_command");
  CHECK(error_code(raw_call(ts.endpoint, {R"({"cmd": 7})"})) == "bad_argument");
  CHECK(error_code(raw_call(ts.endpoint, {R"({"cmd": "hello", "v": 99})"})) == "bad_argument");
  CHECK(error_code(raw_call(ts.endpoint, {R"({"cmd": "step", "session": "nope", "action": 1})"})) == "no_session");
  CHECK(error_code(raw_call(ts.endpoint, {R"({"cmd": "ping"})", "extra frame"})) == "bad_json");
  CHECK(error_code(raw_call(ts.endpoint, {std::string(5000, ' ') + "{}"})) == "limit");
  // Wrong types inside a valid session.
  RemoteEnv env(ts.endpoint, kToy);
  const auto s = env.session();
  CHECK(error_code(raw_call(ts.endpoint, {json{{"cmd", "step"}, {"session", s}, {"action", "three"}}.dump()})) ==
        "bad_argument");
  CHECK(error_code(raw_call(ts.endpoint, {json{{"cmd", "step"}, {"session", s}}.dump()})) == "bad_argument");
  CHECK(error_code(raw_call(ts.endpoint, {json{{"cmd", "reset"}, {"session", s}, {"seed", "x"}}.dump()})) ==
        "bad_argument");
  env.reset();
  CHECK(error_code(raw_call(ts.endpoint, {json{{"cmd", "step"}, {"session", s}, {"action", 99}}.dump()})) ==
        "bad_argument");
  for (int i = 0; i < 4; ++i) env.step(Action(0));
  CHECK(error_code(raw_call(ts.endpoint, {json{{"cmd", "step"}, {"session", s}, {"action", 0}}.dump()})) ==
        "episode_over");
  CHECK(error_code(raw_call(ts.endpoint, {json{{"cmd", "snapshot"}, {"session", s}}.dump()})) == "bad_argument");
  // Session limit.
  RemoteEnv second(ts.endpoint, kToy);
  CHECK_THROWS_WITH(RemoteEnv(ts.endpoint, kToy), Contains("limit"));
  // Config problems: unknown key, data outside the roots, cache_dir from the client.
  auto bad = test::tiny_json();
  bad["env"]["rewrad"] = 1;
  second.close();
  CHECK_THROWS_WITH(RemoteEnv::from_config(ts.endpoint, bad), Contains("env.rewrad"));
  auto outside = test::tiny_json();
  outside["data"] = {{"source", "idx"}, {"path", "/etc"}};
  CHECK_THROWS_WITH(RemoteEnv::from_config(ts.endpoint, outside), Contains("outside the server's data roots"));
  auto cache = test::tiny_json();
  cache["cache_dir"] = "/tmp/elsewhere";
  CHECK_THROWS_WITH(RemoteEnv::from_config(ts.endpoint, cache), Contains("cache_dir"));
  // Still serving, and the first session is intact.
  CHECK(raw_call(ts.endpoint, {R"({"cmd": "ping", "id": 42})"}).at("id") == 42);
  CHECK(env.reset().observation.size() == 2);
}

TEST_CASE("the error path goes through handle() for REQ-style envelopes too", "[server][errors]") {
  TestServer ts;
  zmq::context_t ctx;
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.connect(ts.endpoint);
  req.send(zmq::str_buffer("garbage"), zmq::send_flags::none);
  zmq::message_t reply;
  std::vector<zmq::pollitem_t> items{{req.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, std::chrono::milliseconds(5000));
  REQUIRE((items[0].revents & ZMQ_POLLIN));
  (void)req.recv(reply);
  CHECK(json::parse(reply.to_string()).at("error").at("code") == "bad_json");
}

TEST_CASE("concurrent clients keep their sessions apart", "[server]") {
  ServerOptions o;
  o.workers = 3;
  TestServer ts(o);
  std::vector<std::thread> clients;
  std::atomic<int> mismatches{0};
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      RemoteEnv env(ts.endpoint, json{{"kind", "toy"}, {"toy", {{"steps", 3 + c}, {"actions", 5}}}});
      for (int episode = 0; episode < 20; ++episode) {
        env.reset();
        int steps = 0;
        bool done = false;
        while (!done) {
          auto r = env.step(Action(0));
          ++steps;
          if (r.info.step != steps) ++mismatches;  // another client's step would show up here
          done = r.terminated;
        }
        if (steps != 3 + c) ++mismatches;
      }
    });
  }
  for (auto& t : clients) t.join();
  CHECK(mismatches == 0);
}

TEST_CASE("idle sessions expire", "[server]") {
  ServerOptions o;
  o.idle_timeout = 0.3;
  TestServer ts(o);
  RemoteEnv env(ts.endpoint, kToy);
  CHECK(ts.server->session_count() == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  CHECK(ts.server->session_count() == 0);
  CHECK_THROWS_WITH(env.reset(), Contains("no session"));
}

TEST_CASE("stop answers in-flight requests before the server exits", "[server]") {
  auto ts = std::make_unique<TestServer>();
  auto config = test::tiny_json();
  auto env = RemoteEnv::from_config(ts->endpoint, config);
  env->reset();
  // Start a step, then stop the server while it may still be running.
  std::atomic<bool> replied{false};
  std::thread stepper([&] {
    try {
      env->step(Action(5));
    } catch (const ProtocolError& e) {  // stopping cancels work between batches; the reply says so
      CHECK(std::string(e.code()) == "cancelled");
    }
    replied = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ts->server->stop();
  stepper.join();
  CHECK(replied);
  ts.reset();  // joins the serving thread: run() returned
}

TEST_CASE("a client times out instead of hanging when the server is gone", "[server][errors]") {
  std::unique_ptr<RemoteEnv> env;
  {
    TestServer ts;
    env = std::make_unique<RemoteEnv>(ts.endpoint, kToy, RemoteEnvOptions().set_timeout_ms(300));
    env->reset();
  }
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(env->step(Action(1)), TimeoutError);
  const auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(waited < std::chrono::seconds(5));
  CHECK_THROWS_AS(env->close(), TimeoutError);
}

TEST_CASE("non-loopback binds need allow_remote", "[server]") {
  ServerOptions o;
  o.bind = "tcp://0.0.0.0:*";
  EnvServer server(o);
  CHECK_THROWS_WITH(server.bind(), Contains("--allow-remote"));
  CHECK(is_loopback_endpoint("tcp://127.0.0.1:5555"));
  CHECK(is_loopback_endpoint("ipc:///tmp/x"));
  CHECK_FALSE(is_loopback_endpoint("tcp://10.0.0.2:5555"));
}

TEST_CASE("built-in agents train unchanged against a remote environment", "[server][agents]") {
  TestServer ts;
  RemoteEnv env(ts.endpoint, kToy);
  auto agent = make_agent("q", json{{"q", {{"alpha", 0.5}, {"gamma", 0.9}}}}, env.action_space(),
                          env.observation_space(), 1, 0.9);
  RunOptions o;
  o.episodes = 300;
  train_agent(env, *agent, o);
  CHECK(run_episode(env, *agent, false, 0).total_reward == 4.0);
}

TEST_CASE("the C++ vector env steps several sessions in parallel", "[server]") {
  TestServer a, b;
  RemoteVectorEnv venv({a.endpoint, b.endpoint, a.endpoint},
                       json{{"kind", "toy"}, {"toy", {{"steps", 2}, {"actions", 3}}}});
  REQUIRE(venv.size() == 3);
  auto starts = venv.reset(0);
  CHECK(starts.size() == 3);
  auto r = venv.step({Action(1), Action(0), Action(1)});
  CHECK(r[0].reward == 1.0);
  CHECK(r[1].reward == 0.0);
  CHECK(r[2].reward == 1.0);
  CHECK(a.server->session_count() == 2);
  CHECK(b.server->session_count() == 1);
  CHECK_THROWS_AS(venv.step({Action(1)}), ActionError);
}

TEST_CASE("a CURVE server talks only to clients that know its public key", "[server]") {
  char server_public[41], server_secret[41];
  REQUIRE(zmq_curve_keypair(server_public, server_secret) == 0);
  ServerOptions o;
  o.curve_secret_key = server_secret;
  TestServer ts(o);
  RemoteEnvOptions with_key;
  with_key.curve_server_key = server_public;
  RemoteEnv env(ts.endpoint, kToy, with_key);
  CHECK(env.reset().observation.size() == 2);
  // A plain-text client never completes the handshake: it times out instead of hanging.
  CHECK_THROWS_AS(RemoteEnv(ts.endpoint, kToy, RemoteEnvOptions().set_timeout_ms(300)), TimeoutError);
}

TEST_CASE("an endpoints file describes a fleet: each server with its own CURVE key", "[server]") {
  char public_a[41], secret_a[41];
  REQUIRE(zmq_curve_keypair(public_a, secret_a) == 0);
  CHECK(curve_public_key(secret_a) == public_a);
  CHECK_THROWS_AS(curve_public_key("short"), ConfigError);
  ServerOptions o;
  o.curve_secret_key = secret_a;
  TestServer a(o), b;
  CHECK(advertised_endpoint(a.endpoint) == a.endpoint);  // loopback stays as it is
  CHECK(advertised_endpoint("tcp://0.0.0.0:4000").rfind("tcp://0.0.0.0", 0) != 0);
  const std::string path = test::scratch_dir("fleet") + "/fleet.txt";
  std::ofstream(path) << "# a fleet\n\n" << a.endpoint << " curve=" << public_a << "\n  " << b.endpoint << "\n";
  const auto fleet = read_endpoints_file(path);
  REQUIRE(fleet.size() == 2);
  CHECK(fleet[0].endpoint == a.endpoint);
  CHECK(fleet[0].curve_server_key == public_a);
  CHECK(fleet[1].curve_server_key.empty());
  RemoteVectorEnv venv(fleet, kToy, RemoteEnvOptions().set_timeout_ms(5000));
  CHECK(venv.reset(0).size() == 2);
  CHECK(a.server->session_count() == 1);
  CHECK(b.server->session_count() == 1);
  std::ofstream(path) << "tcp://x:1 curve=tooshort\n";
  CHECK_THROWS_WITH(read_endpoints_file(path), Contains("fleet.txt:1: unexpected 'curve=tooshort'"));
  std::ofstream(path) << "# nothing\n";
  CHECK_THROWS_WITH(read_endpoints_file(path), Contains("lists no servers"));
  CHECK_THROWS_WITH(read_endpoints_file(path + ".missing"), Contains("cannot read the endpoints file"));
}

TEST_CASE("with an allow-list only the listed client keys get in", "[server]") {
  char server_public[41], server_secret[41], client_public[41], client_secret[41];
  REQUIRE(zmq_curve_keypair(server_public, server_secret) == 0);
  REQUIRE(zmq_curve_keypair(client_public, client_secret) == 0);
  ServerOptions o;
  o.curve_secret_key = server_secret;
  o.curve_client_keys = {client_public};
  TestServer ts(o);
  RemoteEnvOptions allowed;
  allowed.curve_server_key = server_public;
  allowed.curve_public_key = client_public;
  allowed.curve_secret_key = client_secret;
  RemoteEnv env(ts.endpoint, kToy, allowed);
  CHECK(env.reset().observation.size() == 2);
  RemoteEnvOptions stranger;  // knows the server key, but its own key is not listed
  stranger.curve_server_key = server_public;
  stranger.timeout_ms = 300;
  CHECK_THROWS_AS(RemoteEnv(ts.endpoint, kToy, stranger), TimeoutError);
  ServerOptions bad;
  bad.curve_client_keys = {client_public};
  bad.bind = "tcp://127.0.0.1:*";
  EnvServer no_secret(bad);
  CHECK_THROWS_WITH(no_secret.bind(), Contains("secret key"));
}

TEST_CASE("oversized requests get a limit reply with their id, and the connection keeps its replies",
          "[server][errors]") {
  ServerOptions o;
  o.max_message_bytes = 4096;
  TestServer ts(o);
  zmq::context_t ctx;
  zmq::socket_t sock(ctx, zmq::socket_type::dealer);
  sock.set(zmq::sockopt::linger, 0);
  sock.connect(ts.endpoint);
  auto send = [&](const std::string& payload) { sock.send(zmq::buffer(payload), zmq::send_flags::none); };
  auto receive = [&] {
    zmq::message_t m;
    REQUIRE(sock.recv(m, zmq::recv_flags::none));
    return json::parse(m.to_string());
  };
  sock.set(zmq::sockopt::rcvtimeo, 10000);
  // 10 MB, the id after the bulk; then a ping on the same connection.
  send(R"({"cmd": "make", "config": ")" + std::string(10'000'000, 'x') + R"(", "id": "big-1"})");
  send(R"({"cmd": "ping", "id": 2})");
  const auto big = receive();
  CHECK(error_code(big) == "limit");
  CHECK(big.at("id") == "big-1");
  CHECK_THAT(big["error"]["message"].get<std::string>(), Contains("--max-message"));
  CHECK(receive().at("id") == 2);
  // Ids inside nested values are not the request's id; an object id is not echoed.
  send(R"({"config": {"id": 5}, "pad": ")" + std::string(5000, ' ') + R"(", "id": 6})");
  CHECK(receive().at("id") == 6);
  send(R"({"id": {"a": 1}, "pad": ")" + std::string(5000, ' ') + R"("})");
  CHECK_FALSE(receive().contains("id"));
  // Above the hard cap ZeroMQ drops the connection: documented, and the server keeps serving.
  CHECK(hard_message_cap(4096) == int64_t{64} << 20);
  CHECK(hard_message_cap(32 << 20) == (int64_t{32} << 22) + 4096);
}

TEST_CASE("error replies echo any id and name types and values readably", "[server][errors][protocol]") {
  TestServer ts;
  CHECK(raw_call(ts.endpoint, {R"({"cmd": "ping", "id": null})"}).at("id").is_null());
  CHECK(raw_call(ts.endpoint, {R"({"cmd": "dance", "id": null})"}).contains("id"));
  RemoteEnv env(ts.endpoint, kToy);
  const auto s = env.session();
  auto message = [&](json req) {
    req["session"] = s;
    return raw_call(ts.endpoint, {req.dump()}).at("error").at("message").get<std::string>();
  };
  CHECK(message({{"cmd", "reset"}, {"seed", 1.5}}) == "field 'seed' must be an integer, got 1.5 (a number)");
  CHECK_THAT(message({{"cmd", "reset"}, {"seed", "x"}}), Contains("must be an integer, got \"x\" (a string)"));
  env.reset();
  const auto huge = json::parse("9223372036854775808");  // 2^63: does not fit a signed index
  CHECK_THAT(message({{"cmd", "step"}, {"action", huge}}), Contains("9223372036854775808"));
  CHECK_THAT(message({{"cmd", "step"}, {"action", huge}}), !Contains("-9223372036854775808"));
  env.step(Action(1));  // the session is intact
}

TEST_CASE("make refuses configs that ask for more work than the server allows", "[server][errors]") {
  ServerOptions o;
  o.limits.set("pretrain_epochs=10");
  TestServer ts(o);
  auto refused = [&](const std::string& key, const json& value) {
    auto cfg = test::tiny_json();
    json patch = json::object();
    json* at = &patch;
    std::string rest = key;
    for (auto dot = rest.find('.'); dot != std::string::npos; dot = rest.find('.')) {
      at = &(*at)[rest.substr(0, dot)];
      rest = rest.substr(dot + 1);
    }
    (*at)[rest] = value;
    cfg.merge_patch(patch);
    const auto reply = raw_call(ts.endpoint, {json{{"cmd", "make"}, {"config", cfg}, {"id", 1}}.dump()});
    INFO(key << " = " << value << ": " << reply.dump());
    CHECK(error_code(reply) == "limit");
    return reply["error"]["message"].get<std::string>();
  };
  CHECK_THAT(refused("network.pretrain.epochs", 100000), Contains("--limit pretrain_epochs=N"));
  CHECK_THAT(refused("env.actions.step", 1e-9), Contains("action_values"));
  CHECK_THAT(refused("data.synthetic.train", 1000000), Contains("data.synthetic.train"));
  CHECK_THAT(refused("env.retrain.epochs", 1000), Contains("retrain_epochs"));
  // Within the limits the same server makes the session. Making it pretrains the tiny network, which
  // can take longer than the default 5 s reply timeout on a loaded machine.
  const auto made = raw_call(ts.endpoint, {json{{"cmd", "make"}, {"config", test::tiny_json()}}.dump()}, 60000);
  INFO(made.dump());
  CHECK(made.value("ok", false) == true);
  const auto hello = raw_call(ts.endpoint, {R"({"cmd": "hello"})"});
  CHECK(hello["limits"]["work"]["pretrain_epochs"] == 10);
  WorkLimits l;
  CHECK_THROWS_WITH(l.set("epochs=3"), Contains("known: pretrain_epochs"));
  CHECK_THROWS_WITH(l.set("samples=-1"), Contains("positive"));
  CHECK_THROWS_WITH(l.set("samples"), Contains("KEY=VALUE"));
}

TEST_CASE("long work is cancelled by the work budget, by closing its session, and by stop", "[server][errors]") {
  // Pretraining that would take minutes: 40 epochs over 100,000 synthetic samples.
  auto slow = test::tiny_json();
  slow.merge_patch({{"data", {{"synthetic", {{"train", 100000}}}}}, {"network", {{"pretrain", {{"epochs", 40}}}}}});
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  SECTION("the work budget") {
    ServerOptions o;
    o.max_work_seconds = 0.5;
    TestServer ts(o);
    const auto t0 = Clock::now();
    const auto reply = raw_call(ts.endpoint, {json{{"cmd", "make"}, {"config", slow}}.dump()}, 60000);
    CHECK(error_code(reply) == "cancelled");
    CHECK_THAT(reply["error"]["message"].get<std::string>(), Contains("--max-work-seconds"));
    CHECK(seconds_since(t0) < 30);  // minutes of pretraining otherwise
    CHECK(ts.server->session_count() == 0);
  }
  SECTION("closing the session") {
    TestServer ts;
    auto busy = test::tiny_json();  // every step retrains 20 epochs on 100,000 samples
    busy.merge_patch({{"data", {{"synthetic", {{"train", 100000}}}}},
                      {"network", {{"pretrain", {{"epochs", 1}}}}},
                      {"env", {{"retrain", {{"samples", 100000}, {"epochs", 20}}}}}});
    auto env_ptr = RemoteEnv::from_config(ts.endpoint, busy);
    RemoteEnv& env = *env_ptr;
    env.reset();
    zmq::context_t ctx;
    zmq::socket_t sock(ctx, zmq::socket_type::dealer);
    sock.set(zmq::sockopt::linger, 0);
    sock.connect(ts.endpoint);
    const std::string step = json{{"cmd", "step"}, {"session", env.session()}, {"action", 3}, {"id", 1}}.dump();
    sock.send(zmq::buffer(step), zmq::send_flags::none);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto t0 = Clock::now();
    const auto closed = raw_call(ts.endpoint, {json{{"cmd", "close"}, {"session", env.session()}}.dump()}, 60000);
    INFO(closed.dump());
    CHECK(closed.at("ok") == true);
    CHECK(seconds_since(t0) < 30);
    zmq::message_t m;
    sock.set(zmq::sockopt::rcvtimeo, 10000);
    REQUIRE(sock.recv(m, zmq::recv_flags::none));
    const auto reply = json::parse(m.to_string());
    CHECK(error_code(reply) == "cancelled");
    CHECK_THAT(reply["error"]["message"].get<std::string>(), Contains("closed"));
  }
  SECTION("stopping the server") {
    auto ts = std::make_unique<TestServer>();
    zmq::context_t ctx;
    zmq::socket_t sock(ctx, zmq::socket_type::dealer);
    sock.set(zmq::sockopt::linger, 0);
    sock.connect(ts->endpoint);
    sock.send(zmq::buffer(json{{"cmd", "make"}, {"config", slow}, {"id", 7}}.dump()), zmq::send_flags::none);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto t0 = Clock::now();
    ts->server->stop();
    ts->thread.join();
    ts->thread = std::thread([] {});  // the destructor joins again
    CHECK(seconds_since(t0) < 10);
    zmq::message_t m;
    sock.set(zmq::sockopt::rcvtimeo, 5000);
    REQUIRE(sock.recv(m, zmq::recv_flags::none));  // the cancelled make still got its reply
    const auto reply = json::parse(m.to_string());
    CHECK(reply.at("id") == 7);
    CHECK(error_code(reply) == "cancelled");
  }
}

TEST_CASE("one client cannot take every session", "[server][errors]") {
  ServerOptions o;
  o.max_sessions_per_client = 2;
  TestServer ts(o);
  zmq::context_t ctx;
  auto connect = [&] {
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::rcvtimeo, 10000);
    s.connect(ts.endpoint);
    return s;
  };
  auto make = [](zmq::socket_t& s) {
    s.send(zmq::buffer(json{{"cmd", "make"}, {"kind", "toy"}}.dump()), zmq::send_flags::none);
    zmq::message_t m;
    REQUIRE(s.recv(m, zmq::recv_flags::none));
    return json::parse(m.to_string());
  };
  auto greedy = connect();
  CHECK(make(greedy).at("ok") == true);
  CHECK(make(greedy).at("ok") == true);
  const auto third = make(greedy);
  CHECK(error_code(third) == "limit");
  CHECK_THAT(third["error"]["message"].get<std::string>(), Contains("--max-sessions-per-client"));
  auto other = connect();  // another client still gets in
  CHECK(make(other).at("ok") == true);
}

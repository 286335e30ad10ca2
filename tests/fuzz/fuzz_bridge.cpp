// libFuzzer target for the ZeroMQ bridge's request handling: EnvServer::handle (JSON parsing, the
// oversized-request id finder, dispatch, session commands, make with remote configs and work
// limits) and the client-side reply readers (reset_from_wire, step_from_wire, check_reply,
// decode_f32_base64).
//
// An input is up to 8 requests, one per line, handled in order. Three placeholders let the fuzzer
// reach live sessions: @T is a toy session and @P a small prune session that live across inputs
// (remade when an input closes them), @N the last session this input made. Sessions an input makes
// are closed after it. An input that starts with '#' goes to the client-side readers instead.
//
// Besides the sanitizers, every reply is checked: it must be a JSON object with "ok" and "v", an
// error must carry a documented code other than "internal" (an internal error is an exception the
// server failed to classify), and a request with a top-level id must get that id back.
// tests/fuzz/README.md says how to build and run it.

#include <prunegym/server/env_server.h>
#include <prunegym/server/protocol.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace {

using json = nlohmann::json;
using prunegym::EnvServer;

constexpr size_t kMaxMessage = 2048;  // small, so the fuzzer reaches the oversized-request path

[[noreturn]] void finding(const std::string& what, const std::string& request, const std::string& reply) {
  std::fprintf(stderr, "\nFINDING: %s\nrequest: %.400s\nreply: %.400s\n", what.c_str(), request.c_str(), reply.c_str());
  std::abort();
}

const char* kSmallPrune =
    R"({"cmd": "make", "kind": "prune", "config": {"seed": 0, "data": {"source": "synthetic", "validation": 40,)"
    R"( "synthetic": {"train": 160, "test": 40, "height": 6, "width": 6, "seed": 3}}, "network": {"name": "custom",)"
    R"( "layers": ["flatten", "linear:16", "relu", "linear"], "pretrain": {"epochs": 1, "batch_size": 32}},)"
    R"( "env": {"retrain": {"samples": 32, "batch_size": 32}}}})";

struct Harness {
  std::unique_ptr<EnvServer> server;
  std::string toy, prune;

  Harness() {
    prunegym::ServerOptions o;
    o.workers = 0;
    o.handle_signals = false;
    o.max_message_bytes = kMaxMessage;
    o.max_sessions = 12;
    o.max_snapshots = 4;
    o.max_work_seconds = 5;
    o.data_roots = {};
    const auto cache = std::filesystem::temp_directory_path() / ("prunegym-fuzz-cache-" + std::to_string(::getpid()));
    o.cache_dir = cache.string();
    // Tight work limits keep every accepted make and step in milliseconds.
    for (const char* limit : {"pretrain_epochs=2", "retrain_epochs=2", "samples=256", "graph_nodes=64", "features=256",
                              "action_values=64", "network_width=0.25", "layer_width=64", "layers=6", "rounds=8"})
      o.limits.set(limit);
    server = std::make_unique<EnvServer>(o);
  }

  std::string made(const std::string& request) {
    const json reply = json::parse(server->handle(request));
    if (!reply.value("ok", false)) finding("the harness's own make failed", request, reply.dump());
    return reply["session"].get<std::string>();
  }

  bool alive(const std::string& id) {
    // restore of a snapshot that does not exist: cheap, changes nothing, tells whether the session lives.
    const json reply = json::parse(server->handle(R"({"cmd":"restore","snapshot":"-","session":")" + id + "\"}"));
    return reply["error"]["code"] != prunegym::codes::no_session;
  }

  void ensure_sessions() {
    if (toy.empty() || !alive(toy)) toy = made(R"({"cmd": "make", "kind": "toy", "toy": {"steps": 3, "actions": 4}})");
    if (prune.empty() || !alive(prune)) prune = made(kSmallPrune);
  }
};

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
}

void check_reply(const std::string& request, const std::string& reply_text) {
  static const std::set<std::string> codes{prunegym::codes::bad_json,     prunegym::codes::unknown_command,
                                           prunegym::codes::bad_argument, prunegym::codes::no_session,
                                           prunegym::codes::episode_over, prunegym::codes::limit,
                                           prunegym::codes::cancelled};
  const json reply = json::parse(reply_text, nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) finding("the reply is not a JSON object", request, reply_text);
  if (!reply.contains("ok") || !reply["ok"].is_boolean() || !reply.contains("v"))
    finding("the reply lacks ok or v", request, reply_text);
  if (!reply["ok"]) {
    const json& err = reply.value("error", json());
    if (!err.is_object() || !err.contains("code") || !err.contains("message") || !err["message"].is_string())
      finding("an error reply without code and message", request, reply_text);
    if (!codes.count(err["code"].get<std::string>())) finding("error code " + err["code"].dump(), request, reply_text);
  }
  const json req = json::parse(request, nullptr, false);
  if (request.size() <= kMaxMessage && req.is_object() && req.contains("id") && reply.value("id", json()) != req["id"])
    finding("the reply does not echo the request's id", request, reply_text);
}

/// The client-side readers: any exception other than ProtocolError escapes to libFuzzer as a crash.
void fuzz_client(const std::string& text) {
  try {
    prunegym::decode_f32_base64(text);
  } catch (const prunegym::ProtocolError&) {
  }
  const json reply = json::parse(text, nullptr, false);
  if (reply.is_discarded()) return;
  for (auto reader :
       {+[](const json& j) { prunegym::reset_from_wire(j); }, +[](const json& j) { prunegym::step_from_wire(j); },
        +[](const json& j) { prunegym::check_reply(j); }, +[](const json& j) { prunegym::action_from_wire(j); }}) {
    try {
      reader(reply);
    } catch (const prunegym::ProtocolError&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness harness;
  std::string input(reinterpret_cast<const char*>(data), size);
  if (!input.empty() && input[0] == '#') {
    fuzz_client(input.substr(1));
    return 0;
  }
  harness.ensure_sessions();
  std::vector<std::string> made;
  size_t start = 0;
  for (int n = 0; n < 8 && start <= input.size(); ++n) {
    size_t end = input.find('\n', start);
    if (end == std::string::npos) end = input.size();
    std::string request = input.substr(start, end - start);
    start = end + 1;
    replace_all(request, "@T", harness.toy);
    replace_all(request, "@P", harness.prune);
    if (!made.empty()) replace_all(request, "@N", made.back());
    const std::string reply = harness.server->handle(request);
    check_reply(request, reply);
    const json r = json::parse(reply);
    if (r["ok"] == true && r.contains("session") && r["session"].is_string()) made.push_back(r["session"]);
  }
  for (const auto& id : made) harness.server->handle(R"({"cmd":"close","session":")" + id + "\"}");
  return 0;
}

// `prunegym serve`: the ZeroMQ bridge for external agents.

#include "commands.h"

#include <prunegym/core/errors.h>
#include <prunegym/core/json_file.h>
#include <prunegym/networks/train.h>
#include <prunegym/server/env_kinds.h>
#include <prunegym/server/env_server.h>

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

namespace prunegym::cli {

namespace {

struct ServeArgs {
  ServerOptions server;
  std::string curve_secret_file, curve_clients_file;
  std::vector<std::string> limits;
  std::optional<int64_t> threads;
  std::string endpoint_file;
  bool quiet = false;
};

/// Whitespace-separated words of a key file (lines starting with "#" are comments); UsageError naming the file when it
/// cannot be read.
std::vector<std::string> read_key_words(const std::string& path, const std::string& option) {
  std::ifstream in(path);
  if (!in) throw UsageError(option + ": cannot read " + path);
  std::vector<std::string> words;
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::string w;
    // Blank lines and "#" comment lines; "#" is also a Z85 digit, so a 40-character word is a key.
    if (!(ls >> w) || (w[0] == '#' && w.size() != 40)) continue;
    do words.push_back(w);
    while (ls >> w);
  }
  return words;
}

/// The server's CURVE secret key from --curve-secret-file or $PRUNEGYM_CURVE_SECRET (the command
/// line shows --curve-secret to every local user through /proc/PID/cmdline).
void load_curve_keys(ServeArgs& a) {
  ServerOptions& o = a.server;
  const int sources = !o.curve_secret_key.empty() + !a.curve_secret_file.empty();
  if (sources > 1) throw UsageError("give the CURVE secret key once: --curve-secret or --curve-secret-file");
  if (!a.curve_secret_file.empty()) {
    struct stat st {};
    if (::stat(a.curve_secret_file.c_str(), &st) == 0 && (st.st_mode & 077))
      throw UsageError("--curve-secret-file: " + a.curve_secret_file +
                       " is readable by other users; chmod 600 it (it holds the server's secret key)");
    const auto words = read_key_words(a.curve_secret_file, "--curve-secret-file");
    if (words.size() != 1)
      throw UsageError("--curve-secret-file: " + a.curve_secret_file + " must hold exactly one Z85 key, found " +
                       std::to_string(words.size()) + " words");
    o.curve_secret_key = words[0];
  } else if (o.curve_secret_key.empty()) {
    if (const char* env = std::getenv("PRUNEGYM_CURVE_SECRET"); env && *env) o.curve_secret_key = env;
  } else {
    std::cerr << "warning: --curve-secret is visible to other local users (ps, /proc); prefer --curve-secret-file "
                 "or PRUNEGYM_CURVE_SECRET\n";
  }
  if (!a.curve_clients_file.empty())
    for (auto& key : read_key_words(a.curve_clients_file, "--curve-clients-file")) o.curve_client_keys.push_back(key);
}

int run(ServeArgs a) {
  load_curve_keys(a);
  for (const auto& l : a.limits) {
    try {
      a.server.limits.set(l);
    } catch (const ConfigError& e) {
      throw UsageError(e.what());
    }
  }
  ServerOptions& o = a.server;
  if (o.max_sessions < 1 || o.workers < 0 || !(o.idle_timeout > 0) || o.max_message_bytes < 64)
    throw UsageError("--max-sessions and --idle-timeout must be positive, --workers >= 0, --max-message at least 64");
  // Workers step in parallel: by default each uses one LibTorch thread so they do not fight.
  configure_threads(a.threads.value_or(o.workers > 1 ? 1 : 0));
  if (!a.quiet) o.log = [](const std::string& line) { std::cerr << line << std::endl; };
  EnvServer server(o);
  const std::string endpoint = server.bind();
  if (!a.endpoint_file.empty()) {
    // What clients on other hosts connect to, with the key they need: one line of an endpoints file,
    // written before "listening on" so that whoever waits for that line finds the file.
    std::string line = advertised_endpoint(endpoint);
    if (!o.curve_secret_key.empty()) line += " curve=" + curve_public_key(o.curve_secret_key);
    write_atomic(a.endpoint_file, line + "\n");
  }
  std::cout << "prunegym serve: listening on " << endpoint << std::endl;
  server.run();
  if (!a.endpoint_file.empty()) std::remove(a.endpoint_file.c_str());
  return 0;
}

}  // namespace

void add_serve(CLI::App& app, Commands& commands) {
  auto* sub = app.add_subcommand("serve", "serve environments over ZeroMQ for external (e.g. Python) agents");
  auto a = std::make_shared<ServeArgs>();
  auto& o = a->server;
  sub->add_option("--bind", o.bind, "endpoint (default tcp://127.0.0.1:5555; tcp://127.0.0.1:* picks a free port)")
      ->type_name("E");
  sub->add_flag("--allow-remote", o.allow_remote, "allow binding a non-loopback address (e.g. tcp://0.0.0.0:5555)");
  sub->add_option("--curve-secret-file", a->curve_secret_file,
                  "file holding the Z85 server secret key (mode 600): encrypt with CURVE; or set PRUNEGYM_CURVE_SECRET")
      ->type_name("F");
  sub->add_option("--curve-secret", o.curve_secret_key,
                  "the Z85 secret key itself (visible to local users in ps; prefer the file)")
      ->type_name("K");
  sub->add_option("--curve-clients-file", a->curve_clients_file,
                  "file of allowed client public keys (Z85), one per line, # comments")
      ->type_name("F");
  add_repeatable(*sub, "--curve-client", o.curve_client_keys, "a client public key (Z85) allowed in; repeatable")
      ->type_name("K");
  add_repeatable(*sub, "--data-root", o.data_roots,
                 "a folder client configs may read datasets from (repeatable; default /usr/share/datasets)")
      ->type_name("DIR");
  sub->add_option("--max-sessions", o.max_sessions, "sessions held at once (default 16)")->type_name("N");
  sub->add_option("--max-sessions-per-client", o.max_sessions_per_client,
                  "sessions one client may hold (default 8): per CURVE key with --curve-client lists, else per "
                  "connection")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  sub->add_option("--idle-timeout", o.idle_timeout, "seconds before an unused session is closed (default 600)")
      ->type_name("S");
  sub->add_option("--workers", o.workers,
                  "threads running make/reset/step (default 2); 0 runs requests inline on the serving thread")
      ->type_name("N");
  sub->add_option("--max-message", o.max_message_bytes, "largest accepted request in bytes (default 1048576)")
      ->type_name("B");
  sub->add_option("--max-work-seconds", o.max_work_seconds,
                  "one request's work budget: make, reset or step running longer is cancelled (default 3600)")
      ->type_name("S")
      ->check(CLI::PositiveNumber);
  sub->add_option("--threads", a->threads, "LibTorch threads per step (default 1 per worker when workers > 1)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  add_repeatable(*sub, "--limit", a->limits,
                 "KEY=VALUE: what one make request may ask for, e.g. pretrain_epochs=200 (repeatable; keys and "
                 "defaults in docs/protocol.md)")
      ->type_name("K=V");
  sub->add_option("--endpoint-file", a->endpoint_file,
                  "once bound, write the endpoint other hosts reach (wildcard address -> host name) and the CURVE "
                  "public key to F, one line of an endpoints file (removed on exit; scripts/slurm-serve uses it)")
      ->type_name("F");
  sub->add_flag("--quiet", a->quiet, "no session log on stderr");
  sub->footer([] {
    return "\nServes pruning environments over ZeroMQ (JSON messages; docs/protocol.md). Clients - the Python\n"
           "package python/prunegym_client, the C++ RemoteEnv, or anything that speaks the protocol - make\n"
           "sessions and drive them with reset/step. Slow steps run on a worker pool, so one client never\n"
           "blocks another. Ctrl-C (or SIGTERM) answers in-flight requests, then exits.\n\n"
           "env kinds (\"kind\" in make; --plugin LIB adds yours): " +
           EnvKindRegistry::instance().joined_names() +
           "\n\nexample:\n  prunegym serve --bind tcp://127.0.0.1:5555\n"
           "  /usr/bin/python3 examples/python/random_agent.py tcp://127.0.0.1:5555\n";
  });
  commands["serve"] = [a] { return run(*a); };
}

}  // namespace prunegym::cli

// `prunegym serve`: the ZeroMQ bridge for external agents.

#include "commands.h"

#include <prunegym/core/errors.h>
#include <prunegym/networks/train.h>
#include <prunegym/server/env_kinds.h>
#include <prunegym/server/env_server.h>

#include <iostream>

namespace prunegym::cli {

namespace {

struct ServeArgs {
  ServerOptions server;
  std::optional<int64_t> threads;
  bool quiet = false;
};

int run(ServeArgs a) {
  ServerOptions& o = a.server;
  if (o.max_sessions < 1 || o.workers < 0 || !(o.idle_timeout > 0) || o.max_message_bytes < 64)
    throw UsageError("--max-sessions and --idle-timeout must be positive, --workers >= 0, --max-message at least 64");
  // Workers step in parallel: by default each uses one LibTorch thread so they do not fight.
  configure_threads(a.threads.value_or(o.workers > 1 ? 1 : 0));
  if (!a.quiet) o.log = [](const std::string& line) { std::cerr << line << std::endl; };
  EnvServer server(o);
  const std::string endpoint = server.bind();
  std::cout << "prunegym serve: listening on " << endpoint << std::endl;
  server.run();
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
  sub->add_option("--curve-secret", o.curve_secret_key, "Z85 server secret key: encrypt with CURVE")->type_name("K");
  add_repeatable(*sub, "--curve-client", o.curve_client_keys, "a client public key (Z85) allowed in; repeatable")
      ->type_name("K");
  add_repeatable(*sub, "--data-root", o.data_roots,
                 "a folder client configs may read datasets from (repeatable; default /usr/share/datasets)")
      ->type_name("DIR");
  sub->add_option("--max-sessions", o.max_sessions, "sessions held at once (default 16)")->type_name("N");
  sub->add_option("--idle-timeout", o.idle_timeout, "seconds before an unused session is closed (default 600)")
      ->type_name("S");
  sub->add_option("--workers", o.workers,
                  "threads running make/reset/step (default 2); 0 runs requests inline on the serving thread")
      ->type_name("N");
  sub->add_option("--max-message", o.max_message_bytes, "largest accepted request in bytes (default 1048576)")
      ->type_name("B");
  sub->add_option("--threads", a->threads, "LibTorch threads per step (default 1 per worker when workers > 1)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
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

// `prunegym serve`: the ZeroMQ bridge for external agents.

#include "cli.h"
#include "commands.h"

#include <prunegym/env/system.h>
#include <prunegym/server/env_server.h>

#include <iostream>

namespace prunegym::cli {

const char* const kServeHelp = R"(usage: prunegym serve [options]

Serves pruning environments over ZeroMQ (JSON messages; docs/protocol.md). Clients - the Python
package python/prunegym_client, the C++ RemoteEnv, or anything that speaks the protocol - make
sessions from a config and drive them with reset/step. Slow steps run on a worker pool, so one
client never blocks another. Ctrl-C (or SIGTERM) answers in-flight requests, then exits.

options:
  --bind E            endpoint (default tcp://127.0.0.1:5555; tcp://127.0.0.1:* picks a free port)
  --allow-remote      allow binding a non-loopback address (e.g. tcp://0.0.0.0:5555)
  --curve-secret K    Z85 server secret key: encrypt with CURVE (clients need the public key)
  --curve-client K    a client public key (Z85) allowed in; repeatable. Without any, every client
                      that knows the server's public key may connect
  --data-root DIR     a folder client configs may read datasets from (repeatable;
                      default /usr/share/datasets)
  --max-sessions N    sessions held at once (default 16)
  --idle-timeout S    seconds before an unused session is closed (default 600)
  --workers N         threads running make/reset/step (default 2); 0 runs requests inline on
                      the serving thread: lowest latency, but one slow step blocks everyone
  --max-message B     largest accepted request in bytes (default 1048576)
  --threads N         LibTorch threads per step (default 1 per worker when workers > 1)
  --quiet             no session log on stderr

example:
  prunegym serve --bind tcp://127.0.0.1:5555
  /usr/bin/python3 examples/python/random_agent.py tcp://127.0.0.1:5555
)";

int run_serve(const std::vector<std::string>& argv) {
  Args args(argv, {"bind", "curve-secret", "max-sessions", "idle-timeout", "workers", "max-message", "threads"},
            {"allow-remote", "quiet"}, {"data-root", "curve-client"});
  ServerOptions o;
  o.bind = args.get("bind", o.bind);
  o.allow_remote = args.flag("allow-remote");
  o.curve_secret_key = args.get("curve-secret", "");
  o.curve_client_keys = args.all("curve-client");
  if (args.has("data-root")) o.data_roots = args.all("data-root");
  o.max_sessions = args.get_int("max-sessions", o.max_sessions);
  o.idle_timeout = args.get_double("idle-timeout", o.idle_timeout);
  o.workers = static_cast<int>(args.get_int("workers", o.workers));
  o.max_message_bytes = static_cast<size_t>(args.get_int("max-message", static_cast<int64_t>(o.max_message_bytes)));
  if (o.max_sessions < 1 || o.workers < 0 || !(o.idle_timeout > 0) || o.max_message_bytes < 64)
    throw UsageError("--max-sessions and --idle-timeout must be positive, --workers >= 0, --max-message at least 64");
  // Workers step in parallel: by default each uses one LibTorch thread so they do not fight.
  configure_threads(args.get_int("threads", o.workers > 1 ? 1 : 0));
  if (!args.flag("quiet")) o.log = [](const std::string& line) { std::cerr << line << std::endl; };
  EnvServer server(o);
  const std::string endpoint = server.bind();
  std::cout << "prunegym serve: listening on " << endpoint << std::endl;
  server.run();
  return 0;
}

}  // namespace prunegym::cli

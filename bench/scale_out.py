#!/usr/bin/python3
"""Scale-out: environment steps per second with one server process against two, driven by one
learner through RemoteVectorEnv. Each server runs one worker with one LibTorch thread, so two
servers can use both cores of a 2-core machine.

    bench/scale_out.py [--config configs/lenet300-fashion.json] [--steps 90] [--out bench-results]

Prints the table and writes scale_out.json. The target: two servers >= 1.7x one server.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from prunegym_client import RemotePruneEnv, RemoteVectorEnv, load_config  # noqa: E402


def start_server(cli, workers, threads):
    proc = subprocess.Popen([cli, "serve", "--bind", "tcp://127.0.0.1:*", "--workers", str(workers), "--threads",
                             str(threads), "--quiet"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        sys.exit("server did not start")
    return proc, line.split("listening on")[1].strip()


def measure(venv, steps, n_actions):
    venv.reset(seed=0)
    done = 0
    t0 = time.perf_counter()
    while done < steps:
        venv.step([(3 * i + done) % n_actions for i in range(venv.num_envs)])
        done += venv.num_envs
    return done / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs" / "lenet300-fashion.json"))
    p.add_argument("--steps", type=int, default=90)
    p.add_argument("--cli", default=str(ROOT / "build" / "bin" / "prunegym"))
    p.add_argument("--out", default=str(ROOT / "bench-results"))
    a = p.parse_args()
    config = load_config(a.config)
    results = {}
    setups = [("1 server, 1 session", 1, 1, 1), ("2 servers, 1 session each", 2, 1, 1),
              ("1 server with 2 workers, 2 sessions", 1, 2, 2)]
    for name, servers, workers, sessions in setups:
        procs = [start_server(a.cli, workers, 1) for _ in range(servers)]
        endpoints = [e for _, e in procs]
        endpoints = (endpoints * sessions)[:max(servers, sessions)]
        try:
            with RemoteVectorEnv(endpoints, config, make_timeout=900) as venv:
                n = venv.single_action_space.n
                measure(venv, 2 * venv.num_envs, n)  # warm-up
                results[name] = measure(venv, a.steps, n)
        finally:
            for proc, _ in procs:
                proc.terminate()
                proc.wait(timeout=30)
        print(f"{name:40s} {results[name]:7.1f} env steps/s", file=sys.stderr)
    base = results["1 server, 1 session"]
    rows = [{"setup": k, "steps_per_second": v, "speedup": v / base} for k, v in results.items()]
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale_out.json").write_text(json.dumps({"config": os.path.relpath(a.config, ROOT), "rows": rows}, indent=2))
    print(f"{'setup':40s} {'steps/s':>8s} {'vs 1 server':>12s}")
    for r in rows:
        print(f"{r['setup']:40s} {r['steps_per_second']:8.1f} {r['speedup']:11.2f}x")
    two = results["2 servers, 1 session each"] / base
    print(f"two servers: {two:.2f}x one server (target >= 1.7x: {'met' if two >= 1.7 else 'not met'})")


if __name__ == "__main__":
    main()

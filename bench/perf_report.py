#!/usr/bin/python3
"""Runs the performance benchmarks and prints one table; writes OUT/bench.json.

  /usr/bin/python3 bench/perf_report.py [--build build] [--out bench-results] [--quick]

Measured in one run: the prunegym step against its hardware bound (bench_step), the same step in
plain Python/PyTorch (bench/reference/purl_step.py), scaling with evaluation-set size and network
size, and a full `prunegym train --agent dqn` on the default config. Run it on a quiet machine:
anything else on the cores (a compile) slows OpenMP-threaded steps by an order of magnitude.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
LENET = str(ROOT / "configs" / "lenet300-fashion.json")


def run_json(cmd, env=None):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--out", default=str(ROOT / "bench-results"))
    ap.add_argument("--quick", action="store_true", help="fewer steps, no conv6 and no full training run")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    step_bin = str(pathlib.Path(args.build) / "bin" / "bench_step")
    cli = str(pathlib.Path(args.build) / "bin" / "prunegym")
    threads = os.cpu_count() or 2
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    steps = 12 if args.quick else 45
    started = time.monotonic()
    report = {"machine": {"cores": threads}, "targets": {
        "step_over_bound": 1.25, "speedup_over_python": 1.5, "reset_ms": 1.0, "dqn_train_seconds": 60}}

    print("1/5 prunegym step, LeNet-300-100 ...", file=sys.stderr, flush=True)
    lenet = run_json([step_bin, LENET, str(steps)], env)
    report["lenet300"] = lenet
    print("2/5 Python/PyTorch reference step ...", file=sys.stderr, flush=True)
    ref = run_json(["/usr/bin/python3", str(ROOT / "bench" / "reference" / "purl_step.py"), "--steps", str(steps),
                    "--threads", str(threads)], env)
    report["python_reference"] = ref
    report["speedup_over_python"] = ref["step_ms"]["median"] / lenet["step_ms"]["median"]

    print("3/5 prunegym step, Conv-2 ...", file=sys.stderr, flush=True)
    conv_steps = max(10, steps // 3)
    report["conv2"] = run_json([step_bin, LENET, str(conv_steps), "network.name=conv2",
                                "network.pretrain.epochs=1"], env)

    print("4/5 scaling ...", file=sys.stderr, flush=True)
    report["scaling_eval"] = []
    for n in (1000, 2500, 5000):
        r = run_json([step_bin, LENET, str(max(10, steps // 3)), f"env.evaluation.samples={n}"], env)
        report["scaling_eval"].append({"eval_samples": n, "step_ms": r["step_ms"]["median"],
                                       "eval_ms": r["eval_ms"]["median"], "bound_ms": r["bound_ms"]})
    # Network size at one reduced setting, so Conv-6 fits in minutes: 200 retrain images, 500
    # evaluation images, a 1-epoch pretraining on 5,000 images (the step's cost does not depend on
    # how well the dense model is trained). The graph row is the GCN config as shipped.
    small = ["data.train_limit=5000", "network.pretrain.epochs=1", "env.retrain.samples=200",
             "env.evaluation.samples=500"]
    report["scaling_network"] = []
    for name in ("lenet300", "conv2") + (() if args.quick else ("conv6",)):
        r = run_json([step_bin, LENET, str(6 if name == "conv6" else max(10, steps // 3)), f"network.name={name}",
                      *small], env)
        report["scaling_network"].append({"network": name, "setting": "retrain 200, evaluate 500",
                                          "step_ms": r["step_ms"]["median"], "bound_ms": r["bound_ms"],
                                          "gflop": r["step_gflop"]})
    r = run_json([step_bin, str(ROOT / "configs" / "gcn-graph.json"), str(max(10, steps // 3))], env)
    report["gcn"] = r
    report["scaling_network"].append({"network": "gcn2 (graph)", "setting": "full batch, 20 epochs",
                                      "step_ms": r["step_ms"]["median"], "bound_ms": r["bound_ms"],
                                      "gflop": r["step_gflop"]})

    if not args.quick:
        print("5/5 full prunegym train --agent dqn ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        proc = subprocess.run([cli, "train", "--config", LENET, "--agent", "dqn", "--out", str(out / "dqn-run"), "--force"],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            sys.exit("the dqn run failed:\n" + proc.stderr[-2000:])
        wall = time.monotonic() - t0
        summary = json.loads((out / "dqn-run" / "summary.json").read_text())
        report["dqn_train"] = {"wall_seconds": wall, "episodes": summary["episodes"],
                               "episodes_per_minute": summary["episodes"] / (summary["seconds"]["training"] / 60),
                               "seconds": summary["seconds"]}

    report["wall_seconds"] = time.monotonic() - started
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")

    def row(name, value, target, ok):
        return f"| {name} | {value} | {target} | {'met' if ok else 'NOT met'} |"

    lines = ["| measure | value | target | |", "|---|---|---|---|"]
    lines.append(row("LeNet-300-100 step (median / p90)",
                     f"{lenet['step_ms']['median']:.1f} / {lenet['step_ms']['p90']:.1f} ms "
                     f"(prune {lenet['prune_ms']['median']:.2f}, retrain {lenet['retrain_ms']['median']:.1f}, "
                     f"evaluate {lenet['eval_ms']['median']:.1f})", "-", True))
    lines.append(row("bound: the step's matrix products", f"{lenet['bound_ms']:.1f} ms "
                     f"({lenet['step_gflop']:.2f} GFLOP at {lenet['bound_gflops']:.1f} GFLOP/s)", "-", True))
    lines.append(row("step / bound", f"{lenet['step_over_bound']:.2f}x", "<= 1.25x", lenet["step_over_bound"] <= 1.25))
    lines.append(row("Python/PyTorch step (median)", f"{ref['step_ms']['median']:.1f} ms (retrain "
                     f"{ref['retrain_ms']['median']:.1f}, evaluate {ref['eval_ms']['median']:.1f})", "-", True))
    lines.append(row("prunegym speed / Python speed", f"{report['speedup_over_python']:.2f}x", ">= 1.5x",
                     report["speedup_over_python"] >= 1.5))
    lines.append(row("reset (median)", f"{lenet['reset_ms']['median']:.3f} ms", "< 1 ms", lenet["reset_ms"]["median"] < 1))
    lines.append(row("peak memory of the step benchmark", f"{lenet['peak_rss_mib']:.0f} MiB", "-", True))
    c2 = report["conv2"]
    lines.append(row("Conv-2 step / bound", f"{c2['step_ms']['median']:.1f} ms / {c2['bound_ms']:.1f} ms = "
                     f"{c2['step_over_bound']:.2f}x", "-", True))
    if "dqn_train" in report:
        d = report["dqn_train"]
        lines.append(row("prunegym train --agent dqn (55 episodes + fine-tuning)", f"{d['wall_seconds']:.1f} s wall, "
                         f"{d['episodes_per_minute']:.0f} episodes/min", "< 60 s", d["wall_seconds"] < 60))
    lines.append("")
    lines.append("| evaluation samples | step ms | evaluate ms | bound ms |")
    lines.append("|---|---|---|---|")
    for s in report["scaling_eval"]:
        lines.append(f"| {s['eval_samples']} | {s['step_ms']:.1f} | {s['eval_ms']:.1f} | {s['bound_ms']:.1f} |")
    lines.append("")
    lines.append("| network | setting | step ms | bound ms | step / bound | GFLOP per step |")
    lines.append("|---|---|---|---|---|---|")
    for s in report["scaling_network"]:
        lines.append(f"| {s['network']} | {s['setting']} | {s['step_ms']:.1f} | {s['bound_ms']:.1f} | "
                     f"{s['step_ms'] / max(s['bound_ms'], 1e-9):.2f}x | {s['gflop']:.3f} |")
    text = "\n".join(lines)
    (out / "bench.md").write_text(text + "\n")
    print(text)
    print(f"\n{report['wall_seconds']:.0f} s; {out / 'bench.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()

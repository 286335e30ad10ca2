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

from provenance import source_state, write_block  # bench/provenance.py

ROOT = pathlib.Path(__file__).resolve().parents[1]
LENET = str(ROOT / "configs" / "lenet300-fashion.json")


def run_json(cmd, env=None, timeout=1800):
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        sys.exit(f"timed out after {timeout} s: {' '.join(cmd)}")
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--out", default=str(ROOT / "bench-results"))
    ap.add_argument("--quick", action="store_true", help="fewer steps, no conv6 and no full training run")
    ap.add_argument("--only-residual", action="store_true", help="only the residual-network rows")
    ap.add_argument("--doc", default="", help="a markdown file whose residual-bench block is regenerated from "
                                               "this run (e.g. docs/performance.md)")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    step_bin = str(pathlib.Path(args.build) / "bin" / "bench_step")
    cli = str(pathlib.Path(args.build) / "bin" / "prunegym")
    threads = os.cpu_count() or 2
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    steps = 12 if args.quick else 45
    started = time.monotonic()
    report = {"provenance": {"command": " ".join(["bench/perf_report.py", *sys.argv[1:]]), **source_state(),
                             "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
              "machine": {"cores": threads}, "targets": {
        "step_over_bound": 1.25, "speedup_over_python": 1.5, "reset_ms": 1.0, "dqn_train_seconds": 60}}

    if args.only_residual:
        report["residual"] = residual_rows(step_bin, env, threads, args.quick)
        report["levers"] = lever_rows(step_bin, env, args.quick)
        write_report(out, report, started)
        render_doc(args.doc, out, report)
        return

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

    print("residual networks ...", file=sys.stderr, flush=True)
    report["residual"] = residual_rows(step_bin, env, threads, args.quick)
    report["levers"] = lever_rows(step_bin, env, args.quick)
    write_report(out, report, started)
    render_doc(args.doc, out, report)


def render_doc(doc, out, report):
    """Writes the residual table with its provenance into DOC between the residual-bench markers."""
    if not doc:
        return
    prov = report["provenance"]
    try:
        source = (out / "bench.json").resolve().relative_to(ROOT)
    except ValueError:
        source = out / "bench.json"
    block = (f"Generated from `{source}` (`{prov['command']}`, commit {prov['commit'][:8]}, {prov['date']}, "
             f"{report['machine']['cores']} cores; medians over the steps in brackets):\n\n"
             + residual_table(report["residual"]) + "\n\nLevers, one at a time against the shipped config:\n\n"
             + lever_table(report["levers"], report["residual"]))
    write_block(doc, "<!-- residual-bench: begin -->", "<!-- residual-bench: end -->", block)


# Residual rows: the prunegym step (bench_step) against the same step in plain Python/torchvision
# (bench/reference/purl_step.py with torchvision's blocks, standard memory layout: what a user
# writes) and against the same Python with channels-last (a tuned peer), at identical settings:
# 1,000 retrain images in batches of 100 with Adam, 1,000 validation images in batches of 500.
# The width-0.125 row pretrains 3 epochs, not the config's 30. The full-width row is torchvision's
# ResNet-50 itself on 28x28 input. It and ResNet-20 pretrain
# their dense model for one epoch on 2,000 images (the step's cost does not depend on how well it
# is trained; retraining draws its 1,000 images from those 2,000), and the Python peers start from
# their initial weights for the same reason.
RESIDUAL = [
    ("ResNet-50, width 0.125 (configs/resnet50-fashion.json)", "resnet50-fashion.json", "resnet50", 0.125,
     ["network.pretrain.epochs=3"],
     ["--eval-samples", "1000", "--eval-batch", "500"]),
    ("ResNet-50, width 1 (torchvision's)", "resnet50-fashion.json", "resnet50", 1.0,
     ["network.width=1", "data.train_limit=2000", "network.pretrain.epochs=1"],
     ["--eval-samples", "1000", "--eval-batch", "500"]),
    ("ResNet-20 (configs/resnet20-fashion.json)", "resnet20-fashion.json", "resnet20", 1.0,
     ["env.evaluation.samples=1000", "env.evaluation.batch_size=500", "data.train_limit=2000",
      "network.pretrain.epochs=1"], ["--eval-samples", "1000", "--eval-batch", "500"]),
]


def residual_rows(step_bin, env, threads, quick):
    rows = []
    for label, config, network, width, overrides, peer_args in RESIDUAL:
        wide = width >= 1.0 and network == "resnet50"
        steps = 4 if wide else (8 if quick else 16)
        print(f"  {label}: prunegym ...", file=sys.stderr, flush=True)
        ours = run_json([step_bin, str(ROOT / "configs" / config), str(steps), *overrides], env)
        peers = {}
        variants = [("python", []), ("python_channels_last", ["--channels-last"])]
        if not wide:
            variants.append(("python_frozen_eval", ["--channels-last", "--frozen-eval"]))
        for name, extra in variants:
            print(f"  {label}: {name} ...", file=sys.stderr, flush=True)
            peers[name] = run_json(["/usr/bin/python3", str(ROOT / "bench" / "reference" / "purl_step.py"),
                                    "--network", network, "--width", str(width), "--dense-epochs", "0",
                                    "--steps", str(steps), "--threads", str(threads), *peer_args, *extra], env)
        rows.append({"label": label, "prunegym": ours, **peers,
                     "speedup_over_python": peers["python"]["step_ms"]["median"] / ours["step_ms"]["median"],
                     "speedup_over_python_channels_last":
                         peers["python_channels_last"]["step_ms"]["median"] / ours["step_ms"]["median"]})
    return rows


# Levers measured on the shipped ResNet-50 config: each run changes one thing against the default.
LEVERS = [
    ("as shipped: channels-last, batch norm folded in evaluation, evaluation batches of 500", {}, []),
    ("standard (NCHW) layout", {"PRUNEGYM_RESNET_LAYOUT": "contiguous"}, []),
    ("batch norm not folded", {"PRUNEGYM_RESNET_FOLD": "0"}, []),
    ("evaluation batches of 100", {}, ["env.evaluation.batch_size=100"]),
    ("evaluation in one batch of 1,000", {}, ["env.evaluation.batch_size=1000"]),
    ("LibTorch's per-tensor Adam instead of the flat one", {"PRUNEGYM_FLAT_ADAM": "0"}, []),
]
# Lever rows measure speed, which does not depend on how well the dense model is trained: they
# pretrain it 3 epochs like the residual row (the shipped 30 took 14 minutes of a quick bench).
LEVER_OVERRIDES = ["network.pretrain.epochs=3"]


def lever_rows(step_bin, env, quick):
    rows = []
    for label, extra_env, overrides in LEVERS:
        print(f"  lever: {label} ...", file=sys.stderr, flush=True)
        r = run_json([step_bin, str(ROOT / "configs" / "resnet50-fashion.json"), str(8 if quick else 16), *LEVER_OVERRIDES,
                      *overrides],
                     dict(env, **extra_env))
        rows.append({"label": label, "step_ms": r["step_ms"]["median"], "retrain_ms": r["retrain_ms"]["median"],
                     "eval_ms": r["eval_ms"]["median"], "steps": r["steps"]})
    return rows


def lever_table(rows, residual=None):
    lines = ["| ResNet-50 width 0.125 [steps] | step | retrain | evaluate |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} [{r['steps']}] | {r['step_ms']:.0f} ms | {r['retrain_ms']:.0f} ms | "
                     f"{r['eval_ms']:.0f} ms |")
    for row in residual or []:
        if "python_frozen_eval" in row and "0.125" in row["label"]:
            for name, label in (("python_channels_last", "Python peer, channels-last"),
                                ("python_frozen_eval", "Python peer, channels-last, evaluation through a frozen "
                                                       "inference graph rebuilt every step")):
                r = row[name]
                lines.append(f"| {label} [{r['steps']}] | {r['step_ms']['median']:.0f} ms | "
                             f"{r['retrain_ms']['median']:.0f} ms | {r['eval_ms']['median']:.0f} ms |")
    return "\n".join(lines)


def residual_table(rows):
    lines = ["| network | prunegym step (retrain + evaluate) | roofline (FLOPs at peak sgemm) | step / roofline | "
             "product bound | step / bound | Python/torchvision step | speed-up | Python channels-last | speed-up |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        o, py, cl = r["prunegym"], r["python"], r["python_channels_last"]
        lines.append(
            f"| {r['label']} [{o['steps']}] | {o['step_ms']['median']:.0f} ms ({o['retrain_ms']['median']:.0f} + "
            f"{o['eval_ms']['median']:.0f}) | {o['roofline_ms']:.0f} ms ({o['step_gflop']:.1f} GFLOP at "
            f"{o['peak_gflops']:.0f} GFLOP/s) | {o['step_over_roofline']:.2f}x | {o['bound_ms']:.0f} ms | "
            f"{o['step_over_bound']:.2f}x | {py['step_ms']['median']:.0f} ms ({py['retrain_ms']['median']:.0f} + "
            f"{py['eval_ms']['median']:.0f}) | **{r['speedup_over_python']:.2f}x** | "
            f"{cl['step_ms']['median']:.0f} ms ({cl['retrain_ms']['median']:.0f} + {cl['eval_ms']['median']:.0f}) | "
            f"{r['speedup_over_python_channels_last']:.2f}x |")
    return "\n".join(lines)


def write_report(out, report, started):
    report["wall_seconds"] = time.monotonic() - started
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    if "lenet300" not in report:
        text = residual_table(report["residual"]) + "\n\n" + lever_table(report["levers"], report["residual"])
        (out / "bench.md").write_text(text + "\n")
        print(text)
        return
    lenet, ref = report["lenet300"], report["python_reference"]

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
    lines.append("")
    lines.append(residual_table(report["residual"]))
    lines.append("")
    lines.append(lever_table(report["levers"], report["residual"]))
    text = "\n".join(lines)
    (out / "bench.md").write_text(text + "\n")
    print(text)
    print(f"\n{report['wall_seconds']:.0f} s; {out / 'bench.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Runs `prunegym train` for several agents and seeds and writes a results table.

    bench/agents_table.py [--config configs/lenet300-fashion.json] [--agents dqn,q,ppo,uniform]
                          [--seeds 0,1,2] [--out docs/results/agents]

Writes OUT/runs/<agent>-s<seed>/ (each run's full output), OUT/agents.json and OUT/agents.md
(mean and spread over seeds), and prints the table. Runs that already finished are reused.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


# The control: no pruning (a single action, alpha 0) and the same fine-tuning, so the table shows
# how much of the accuracy after fine-tuning comes from the extra training epochs alone.
CONTROL = "dense+finetune"


def run(cli, config, agent, seed, out, threads):
    folder = out / "runs" / f"{agent}-s{seed}"
    summary = folder / "summary.json"
    if summary.exists():
        return json.loads(summary.read_text()), True
    cmd = [cli, "train", "--config", config, "--seed", str(seed), "--out", str(folder), "--force",
           "--threads", str(threads)]
    if agent == CONTROL:
        cmd += ["--agent", "random", "--episodes", "1", "--set", 'env.actions={"values":[0.0]}']
    else:
        cmd += ["--agent", agent]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
    return json.loads(summary.read_text()), False


def stats(values):
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, sd, min(values), max(values)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs" / "lenet300-fashion.json"))
    p.add_argument("--agents", default="dqn,q,ppo,uniform")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", default=str(ROOT / "docs" / "results" / "agents"))
    p.add_argument("--cli", default=str(ROOT / "build" / "bin" / "prunegym"))
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    agents = a.agents.split(",") + [CONTROL]
    seeds = [int(s) for s in a.seeds.split(",")]
    results = {}
    for agent in agents:
        for seed in seeds:
            t0 = time.time()
            summary, cached = run(a.cli, a.config, agent, seed, out, a.threads)
            print(f"{agent:8s} seed {seed}: sparsity {100 * summary['sparsity']:.2f}%  test "
                  f"{100 * summary['after_finetune']['test_accuracy']:.2f}%  "
                  f"({'cached' if cached else f'{time.time() - t0:.0f} s'})", file=sys.stderr)
            results.setdefault(agent, []).append(summary)

    rows = []
    for agent, runs in results.items():
        dense = runs[0]["dense"]["test_accuracy"]
        sp = stats([r["sparsity"] for r in runs])
        acc = stats([r["after_finetune"]["test_accuracy"] for r in runs])
        pre = stats([r["before_finetune"]["test_accuracy"] for r in runs])
        drop = stats([dense - r["after_finetune"]["test_accuracy"] for r in runs])
        wall = stats([r["seconds"]["total"] for r in runs])
        alphas = [statistics.fmean(r["layers"][i]["alpha"] for r in runs) for i in range(len(runs[0]["layers"]))]
        rows.append({"agent": agent if agent != CONTROL else "dense + fine-tune (control)", "runs": len(runs), "sparsity": sp, "test_accuracy": acc, "pruned_test_accuracy": pre,
                     "drop": drop, "wall_seconds": wall, "mean_alphas": alphas, "dense_test_accuracy": dense,
                     "episodes": runs[0]["episodes"] if agent != CONTROL else 0,
                     "per_seed": [{"seed": r["seed"], "sparsity": r["sparsity"],
                                   "test_accuracy": r["after_finetune"]["test_accuracy"],
                                   "alphas": [l["alpha"] for l in r["layers"]]} for r in runs]})
    (out / "agents.json").write_text(json.dumps(rows, indent=2) + "\n")

    pct = lambda m: f"{100 * m[0]:.2f} ± {100 * m[1]:.2f}"
    lines = [
        f"| agent | episodes | global sparsity % | test acc. after fine-tune % | drop vs dense (pts) | test acc. before fine-tune % | mean alphas | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['agent']} | {r['episodes']} | {pct(r['sparsity'])} | {pct(r['test_accuracy'])} | "
                     f"{100 * r['drop'][0]:.2f} (max {100 * r['drop'][3]:.2f}) | {pct(r['pruned_test_accuracy'])} | "
                     f"{', '.join(f'{x:.2f}' for x in r['mean_alphas'])} | {r['wall_seconds'][0]:.1f} |")
    table = "\n".join(lines)
    (out / "agents.md").write_text(
        f"Mean ± standard deviation over seeds {a.seeds}; dense test accuracy "
        f"{100 * rows[0]['dense_test_accuracy']:.2f}%. Config: {os.path.relpath(a.config, ROOT)}.\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()

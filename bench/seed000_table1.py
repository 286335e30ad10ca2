#!/usr/bin/python3
"""Seed 000's Table 1 as a grid of tabular Q-learning runs on the lottery-ticket rounds MDP.

Each row trains `prunegym train --agent q` with one Q-update rule and learning rate (and discount
for eq6); the reference row runs the plain lottery-ticket loop (20% per round, rewound to the
initialisation) on the same MDP. Finished runs are kept in OUT/runs and never recomputed.

  /usr/bin/python3 bench/seed000_table1.py [--config configs/lottery-q-lenet300.json]
                                           [--out docs/results/seed000] [--cli build/bin/prunegym]
"""

import argparse
import csv
import json
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

# (update, alpha, gamma, seed's train accuracy, seed's validation accuracy) - seed 000, Table 1
ROWS = [
    ("eq3", 0.5, None, 89.68, 89.31), ("eq3", 0.6, None, 90.70, 90.40), ("eq3", 0.7, None, 91.09, 90.86),
    ("eq3", 0.8, None, 8.85, 0.09), ("eq3", 0.9, None, 90.59, 89.82), ("eq3", 1.0, None, 91.21, 90.86),
    ("eq6", 0.9, 0.4, 9.10, 0.09), ("eq6", 0.9, 0.5, 88.98, 88.69), ("eq6", 0.9, 0.6, 90.60, 89.94),
    ("eq6", 0.9, 0.7, 89.83, 89.22), ("eq6", 0.9, 0.8, 90.09, 89.39), ("eq6", 0.9, 0.9, 90.16, 89.79),
    ("eq6", 0.9, 1.0, 9.10, 0.09),
]
SEED_LTH = (96.86, 95.92)


def run(cmd, log):
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\nsee {log}")
    return proc.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "configs" / "lottery-q-lenet300.json"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / "seed000"))
    ap.add_argument("--cli", default=str(ROOT / "build" / "bin" / "prunegym"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    results = []
    for i, (update, alpha, gamma, seed_train, seed_valid) in enumerate(ROWS):
        name = f"{update}-a{alpha}" + (f"-g{gamma}" if gamma is not None else "")
        run_dir = runs / name
        summary_file = run_dir / "summary.json"
        if not summary_file.exists():
            print(f"[{i + 1}/{len(ROWS)}] {name} ...", file=sys.stderr, flush=True)
            cmd = [args.cli, "train", "--config", args.config, "--agent", "q", "--seed", str(args.seed),
                   "--out", str(run_dir), "--force", "--set", f"agents.q.update={update}",
                   "--set", f"agents.q.alpha={alpha}"]
            if gamma is not None:
                cmd += ["--set", f"agents.q.gamma={gamma}"]
            run(cmd, runs / f"{name}.log")
        else:
            print(f"[{i + 1}/{len(ROWS)}] {name}: read back", file=sys.stderr)
        s = json.loads(summary_file.read_text())
        with open(run_dir / "episodes.csv", newline="") as f:
            episodes = list(csv.DictReader(f))
        last = episodes[-10:]
        results.append({
            "rule": update, "alpha": alpha, "gamma": gamma, "rounds": len(s["final_values"]),
            "rates": s["final_values"], "sparsity": s["sparsity"],
            "val_before": s["before_finetune"]["validation_accuracy"],
            "test_before": s["before_finetune"]["test_accuracy"],
            "val_after": s["after_finetune"]["validation_accuracy"],
            "test_after": s["after_finetune"]["test_accuracy"],
            "last10_reward": sum(float(e["total_reward"]) for e in last) / len(last),
            "seconds": s["seconds"]["total"], "seed_train": seed_train, "seed_valid": seed_valid,
        })

    # Reference: the lottery-ticket loop itself, 20% per round on the same MDP.
    lth_file = runs / "lth-20pct.json"
    if not lth_file.exists():
        print("reference: lottery-ticket loop, 20% per round ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        lines = run([args.cli, "episode", "--config", args.config, "--alpha", "0.2", "--seed", str(args.seed),
                     "--format", "json"], runs / "lth-20pct.log").splitlines()
        summary = json.loads(lines[-1])["summary"]
        summary["seconds"] = time.monotonic() - t0
        lth_file.write_text(json.dumps(summary, indent=2) + "\n")
    lth = json.loads(lth_file.read_text())

    fields = ["rule", "alpha", "gamma", "rounds", "sparsity", "val_before", "test_before", "val_after", "test_after",
              "last10_reward", "seconds", "seed_train", "seed_valid"]
    with open(out / "table1.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields + ["rates"])
        w.writeheader()
        for r in results:
            w.writerow({**r, "rates": ";".join(f"{v:g}" for v in r["rates"])})
    (out / "table1.json").write_text(json.dumps({"config": args.config, "seed": args.seed, "rows": results,
                                                 "lottery_reference": lth,
                                                 "wall_seconds": time.monotonic() - started}, indent=2) + "\n")

    def pct(v):
        return f"{100 * v:.2f}%"

    lines = ["| Q-update | alpha | gamma | greedy rates | sparsity | val (last round) | val (fine-tuned) "
             "| test (fine-tuned) | mean reward, last 10 ep. | seed 000: train / valid | time |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        gamma = "-" if r["gamma"] is None else f"{r['gamma']:g}"
        rates = " ".join(f"{v:g}" for v in r["rates"])
        lines.append(f"| {r['rule']} | {r['alpha']:g} | {gamma} | {rates} | {pct(r['sparsity'])} | {pct(r['val_before'])} "
                     f"| {pct(r['val_after'])} | {pct(r['test_after'])} | {r['last10_reward']:.3f} "
                     f"| {r['seed_train']:.2f}% / {r['seed_valid']:.2f}% | {r['seconds']:.0f} s |")
    lines.append(f"| LTH, 20%/round | - | - | 0.2 x {lth['steps']} | {pct(lth['sparsity'])} | {pct(lth['accuracy'])} | - "
                 f"| {pct(lth['test_accuracy'])} (not fine-tuned) | {lth['total_reward']:.3f} (one episode) "
                 f"| {SEED_LTH[0]:.2f}% / {SEED_LTH[1]:.2f}% | {lth['seconds']:.0f} s |")
    (out / "table1.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwall time {time.monotonic() - started:.0f} s; results in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

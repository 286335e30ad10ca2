"""The built-in agents (DQN, tabular Q, PPO) against PuRL's uniform baseline and a no-pruning
control on the default setup (LeNet-300-100 / Fashion-MNIST, PuRL's MDP), seeds 0-4 reported
and seeds 5-9 held out. configs/bench/agents.json on configs/lenet300-fashion.json. Rendered by
bench/reproduce.py into docs/results/agents/: README.md and runs.csv, from raw/ only."""
import csv
import json

import claims
from results_common import ROOT, fmt, mean_se, provenance_lines

EXPERIMENT = {
    "grids": ["agents"], "seeds": 10, "out": ROOT / "docs/results/agents",
    "files": ("episodes.csv", "summary.json", "run.json"),
    "provenance": {
        "data": {"dataset": "Fashion-MNIST (Debian dataset-fashion-mnist, original IDX files)",
                 "train": 55000, "validation": 5000, "test": 10000, "retrain_per_step": 1000},
        "budget": {"episodes": 55, "policy_episodes": 5, "finetune_epochs": 3, "pretrain_epochs": 8,
                   "uniform_episodes": 8, "reported_seeds": [0, 1, 2, 3, 4], "held_out_seeds": [5, 6, 7, 8, 9]},
    },
}

ROWS = [("dqn", "DQN (PuRL's settings)"), ("q", "tabular Q"), ("ppo", "PPO"),
        ("uniform", "uniform alpha (PuRL's baseline)"), ("control", "control: no pruning, same fine-tuning")]
REPORTED = range(0, 5)
HELD_OUT = range(5, 10)
TARGET_SPARSITY = 0.9


def load(out):
    runs = []
    for grid_dir in sorted((out / "raw").iterdir()):
        for run in sorted(grid_dir.iterdir()):
            s = json.loads((run / "summary.json").read_text())
            runs.append({"variant": run.name.rsplit("-s", 1)[0], "seed": int(s["seed"]),
                         "test": s["after_finetune"]["test_accuracy"], "before": s["before_finetune"]["test_accuracy"],
                         "sparsity": s["sparsity"], "dense": s["dense"]["test_accuracy"],
                         "alphas": [layer.get("alpha", 0.0) for layer in s["layers"]], "seconds": s["seconds"]["total"]})
    return runs


def table(runs, seeds):
    lines = ["| agent | seeds | sparsity | test accuracy (fine-tuned) | before fine-tuning | mean alpha per layer "
             "(fc1, fc2, fc3) | sparsity >= 90% |", "|---|---|---|---|---|---|---|"]
    for variant, label in ROWS:
        mine = [r for r in runs if r["variant"] == variant and r["seed"] in seeds]
        if not mine:
            continue
        sp, acc, bf = (mean_se([r[k] for r in mine]) for k in ("sparsity", "test", "before"))
        alphas = ", ".join(f"{mean_se([r['alphas'][i] for r in mine])[0]:.2f}" for i in range(len(mine[0]["alphas"])))
        hit = sum(r["sparsity"] >= TARGET_SPARSITY for r in mine)
        lines.append(f"| {label} | {len(mine)} | {fmt(*sp)} | {fmt(*acc, digits=2)} | {fmt(*bf)} | {alphas} "
                     f"| {hit}/{len(mine)} |")
    return lines


def verdicts(runs, seeds, label):
    def of(variant):
        return {r["seed"]: r for r in runs if r["variant"] == variant and r["seed"] in seeds}

    dqn, uni, ctl = of("dqn"), of("uniform"), of("control")
    n = len(dqn)
    if n < len(seeds):
        return [f"- {label}: {n} of {len(seeds)} seeds in; no verdict yet."]
    out = []
    hit = sum(r["sparsity"] >= TARGET_SPARSITY for r in dqn.values())
    word = "holds on every seed" if hit == n else ("holds on most seeds" if hit >= n - 1 else "does not hold")
    out.append(f"- {label}: *DQN reaches PuRL's 90% sparsity target*: {word} ({hit} of {n}; lowest "
               f"{100 * min(r['sparsity'] for r in dqn.values()):.1f}%).")
    both = [s for s in dqn if s in uni]
    acc = sum(dqn[s]["test"] > uni[s]["test"] for s in both)
    sp = sum(dqn[s]["sparsity"] >= uni[s]["sparsity"] for s in both)
    word = "holds on every seed" if acc == sp == len(both) else (
        "holds in accuracy, not always in sparsity" if acc == len(both) else "does not hold on every seed")
    out.append(f"- {label}: *DQN is more accurate than the uniform baseline and at least as sparse*: {word} "
               f"(more accurate on {acc} of {len(both)} seeds, at least as sparse on {sp}).")
    drops = [ctl[s]["test"] - dqn[s]["test"] for s in dqn if s in ctl]
    within = sum(d <= 0.01 for d in drops)
    out.append(f"- {label}: *DQN stays within 1 point of the equally fine-tuned unpruned network*: "
               f"{'holds on every seed' if within == len(drops) else f'{within} of {len(drops)} seeds'} "
               f"(gap {100 * mean_se(drops)[0]:.2f} +- {100 * mean_se(drops)[1]:.2f} points).")
    return out


def render(out):
    runs = load(out)
    prov = json.loads((out / "provenance.json").read_text())
    with open(out / "runs.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["variant", "seed", "held_out", "sparsity", "test_accuracy", "test_accuracy_before_finetune",
                    "dense_test_accuracy", "alphas", "seconds"])
        for r in sorted(runs, key=lambda r: (r["variant"], r["seed"])):
            w.writerow([r["variant"], r["seed"], int(r["seed"] in HELD_OUT), f"{r['sparsity']:.4f}", f"{r['test']:.4f}",
                        f"{r['before']:.4f}", f"{r['dense']:.4f}", " ".join(f"{a:g}" for a in r["alphas"]),
                        f"{r['seconds']:.1f}"])
    dense = mean_se([r["dense"] for r in runs if r["seed"] in REPORTED]) if runs else (float("nan"),) * 2
    lines = ["# Agents on LeNet-300-100 / Fashion-MNIST", "",
             "Generated by `bench/reproduce.py agents` from [raw/](raw) (one folder per run) and "
             "[provenance.json](provenance.json); per-run figures in [runs.csv](runs.csv). Do not edit by hand.", "",
             "The default setup ([configs/lenet300-fashion.json](../../../configs/lenet300-fashion.json), what "
             "`scripts/demo` runs): LeNet-300-100 pretrained 8 epochs, PuRL's MDP (alpha 0.0..2.2 by 0.1, dense "
             "rewards after retraining on 1,000 training images, validation accuracy on 5,000 held-out training "
             "images, T_P = 90%, T_A = dense validation accuracy - 1 point), 55 episodes, the final policy is the "
             "mean alpha per layer over 5 greedy episodes, then 3 epochs of fine-tuning. The control prunes nothing "
             "and fine-tunes the same 3 epochs, so it shows what the extra epochs alone give. "
             f"Dense test accuracy {fmt(*dense, digits=2)}: every seed prunes the same pretrained network (as PuRL "
             "prunes one pretrained model); the seed sets the agent's initialisation and exploration and the "
             "retraining samples. Mean +- standard error over seeds.", "",
             "## Seeds 0-4", ""] + table(runs, REPORTED) + [
             "", "## Seeds 5-9 (held out: nothing was tuned on them)", ""] + table(runs, HELD_OUT) + [
             "", "## Verdicts", ""] + claims.mark("agents", verdicts(runs, REPORTED, "Seeds 0-4") +
                                                  verdicts(runs, HELD_OUT, "Seeds 5-9"), prov["sessions"])
    lines += [""] + claims.rules_section("agents", prov["sessions"])
    lines += provenance_lines(prov, [
        f"- data: {prov['data']['dataset']}: {prov['data']['train']:,} training, {prov['data']['validation']:,} "
        f"validation, {prov['data']['test']:,} test images; {prov['data']['retrain_per_step']:,} retraining images "
        "per step",
        "- budget: PuRL's 55 episodes and DQN settings on a stand-in network and dataset (the seed: ResNet-50 on "
        "CIFAR-10/ImageNet)",
        f"- compute: {sum(r['seconds'] for r in runs) / 60:.1f} run-minutes over {len(runs)} runs"])
    (out / "README.md").write_text("\n".join(lines) + "\n")

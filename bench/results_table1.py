"""PuRL's Table 1 (one MDP choice changed at a time against the dense-reward baseline) and the
seeds' rewards side by side on the same MDP, on LeNet-300-100 / Fashion-MNIST standing in for
ResNet-50 / CIFAR-10. configs/bench/purl-table1.json and configs/bench/rewards.json on
configs/lenet300-fashion.json. Rendered by bench/reproduce.py into docs/results/purl-table1/:
README.md, runs.csv and tradeoff.png, from raw/ only."""
import csv
import json
import sys

import claims
from results_common import ROOT, cell, dense_cell, load_bench_runs, mean_se, provenance_lines, share_verdict

EXPERIMENT = {
    "grids": ["purl-table1", "rewards"], "seeds": 5, "seed_major": True,
    "out": ROOT / "docs/results/purl-table1", "files": ("episodes.csv", "summary.json", "run.json"),
    "provenance": {
        "data": {"dataset": "Fashion-MNIST (Debian dataset-fashion-mnist, original IDX files)",
                 "train": 55000, "validation": 5000, "test": 10000, "retrain_per_step": 1000,
                 "stand_in_for": "CIFAR-10 (not packaged on this machine)"},
        "budget": {"episodes": 55, "policy_episodes": 5, "agent": "dqn (PuRL settings)", "pretrain_epochs": 8,
                   "finetune_epochs": 3, "retrain_per_step": "1,000 images (the seed: one epoch, 55x more)",
                   "network": "LeNet-300-100, 3 prunable layers (the seed: ResNet-50, 54)",
                   "targets": "sparsity 90%, accuracy dense validation - 1 point (the seed: 60% and 95%)",
                   "paper": "ResNet-50 on CIFAR-10, 55 episodes, 3 trials"},
    },
}

# Table 1 of the seed (ResNet-50 / CIFAR-10, 3 trials): accuracy, its SE, sparsity, its SE, in percent.
SEED = {"sparse-rewards": (68.0, 13.9, 66.1, 12.7), "dense-rewards": (91.8, 2.0, 70.1, 2.3),
        "magnitude-target": (86.6, 3.9, 60.3, 0.8), "reward-2": (91.4, 0.7, 68.3, 2.2),
        "reward-3": (90.7, 0.2, 69.4, 2.9), "action-0.2": (92.2, 0.5, 70.6, 0.6),
        "state-2": (78.9, 8.6, 72.2, 4.5)}
TABLE1 = [("sparse-rewards", "sparse rewards (benchmark)"), ("dense-rewards", "dense rewards (baseline)"),
          ("magnitude-target", "baseline + magnitude target"), ("reward-2", "baseline + reward 2 (Eq. 4)"),
          ("reward-3", "baseline + reward 3 (Eq. 5)"), ("action-0.2", "baseline + action step 0.2"),
          ("state-2", "baseline + state 2 (per layer: 6 dims here, 108 in the seed)")]
REWARDS = [("purl", "purl (Eq. 3, the baseline)"), ("purl-upside", "purl_upside (Eq. 4)"),
           ("purl-cubic", "purl_cubic (Eq. 5)"), ("lottery-q", "lottery_q (seed 000: -(1 - A) * remaining / total)"),
           ("amc-log", "amc_log (AMC-style: -(1 - A) * log(remaining))"),
           ("balanced", "balanced (plugin, examples/reward_plugin.cpp)")]
SEEDS = 5


def by_variant(runs, grid):
    out = {}
    for r in sorted((r for r in runs if r["grid"] == grid), key=lambda r: r["seed"]):
        out.setdefault(r["variant"], []).append(r)
    return out


def pareto(rows):
    """Variants whose mean (accuracy, sparsity) no other variant's mean beats on both."""
    means = {v: (mean_se([r["test"] for r in rs])[0], mean_se([r["sparsity"] for r in rs])[0])
             for v, rs in rows.items()}
    return {v for v, (a, s) in means.items()
            if not any(a2 >= a and s2 >= s and (a2, s2) != (a, s) for w, (a2, s2) in means.items() if w != v)}


def table(rows, labels, seed_column):
    front = pareto(rows)
    head = "| variant | seeds | test accuracy (fine-tuned) | sparsity | accuracy before fine-tuning |"
    lines = [head + (" seed (ResNet-50, CIFAR-10): accuracy / sparsity |" if seed_column else ""),
             "|---|---|---|---|---|" + ("---|" if seed_column else "")]
    for variant, label in labels:
        mine = rows.get(variant, [])
        seed = ""
        if seed_column:
            a, ase, s, sse = SEED[variant]
            seed = f" {a}% +- {ase}% / {s}% +- {sse}% |"
        star = "*" if variant in front else ""
        lines.append(f"| {star}{label} | {len(mine)} | {cell([r['test'] for r in mine], digits=2)} "
                     f"| {cell([r['sparsity'] for r in mine])} | {cell([r['before'] for r in mine])} |{seed}")
    return lines


def paired(rows, a, b):
    """(seed, run of a, run of b) for the seeds both variants have."""
    bs = {r["seed"]: r for r in rows.get(b, [])}
    return [(r["seed"], r, bs[r["seed"]]) for r in rows.get(a, []) if r["seed"] in bs]


def gap(pairs, key):
    m, se = mean_se([x[key] - y[key] for _, x, y in pairs])
    return f"{100 * m:+.1f} +- {100 * se:.1f} points"


def verdicts(rows, complete):
    def line(claim, a, b, test, seed_text):
        pairs = paired(rows, a, b)
        held = sum(test(x, y) for _, x, y in pairs)
        word = share_verdict(held, len(pairs), complete, SEEDS) if pairs else "no paired seeds yet"
        if not pairs:
            return f"- *{claim}*: {word}."
        acc, sp = (sum(x[k] > y[k] for _, x, y in pairs) for k in ("test", "sparsity"))
        return (f"- *{claim}*: {word}: {held} of {len(pairs)} seeds; accuracy {gap(pairs, 'test')} (higher on "
                f"{acc} of {len(pairs)}), sparsity {gap(pairs, 'sparsity')} (higher on {sp} of {len(pairs)}); "
                f"{seed_text}.")

    def both_above(x, y):
        return x["test"] > y["test"] and x["sparsity"] > y["sparsity"]

    def dominates(x, y):
        return x["test"] >= y["test"] and x["sparsity"] >= y["sparsity"] and (x["test"], x["sparsity"]) != (
            y["test"], y["sparsity"])

    return [
        line("Dense rewards beat sparse rewards on accuracy and sparsity", "dense-rewards", "sparse-rewards",
             both_above, "the seed: +23.8 and +4.0 points (differences are the first row minus the second; "
             "how fast each converges: [purl-convergence](../purl-convergence/README.md))"),
        line("Std-based pruning beats a per-layer magnitude target on accuracy and sparsity", "dense-rewards",
             "magnitude-target", both_above, "the seed: +5.2 and +9.8 points"),
        line("The baseline outperforms reward 2 on accuracy and sparsity", "dense-rewards", "reward-2", both_above,
             "the seed: +0.4 and +1.8 points, 'close to the baseline'"),
        line("The baseline outperforms reward 3 on accuracy and sparsity", "dense-rewards", "reward-3", both_above,
             "the seed: +1.1 and +0.7 points, 'close to the baseline'"),
        line("Action step 0.2 Pareto-dominates the baseline", "action-0.2", "dense-rewards", dominates,
             "the seed: +0.4 and +0.5 points, so PuRL keeps step 0.2"),
        line("The per-layer state is less accurate than the baseline", "dense-rewards", "state-2",
             lambda x, y: x["test"] > y["test"], "the seed on CIFAR-10: +12.9 and -2.1 points; on ResNet-50 "
             "with 108 dimensions: [purl-table2](../purl-table2/README.md)"),
    ]


def render(out):
    runs = load_bench_runs(out)
    prov = json.loads((out / "provenance.json").read_text())
    t1, rw = by_variant(runs, "purl-table1"), by_variant(runs, "rewards")
    complete = all(len(t1.get(v, [])) >= SEEDS for v, _ in TABLE1) and all(len(rw.get(v, [])) >= SEEDS
                                                                           for v, _ in REWARDS)
    with open(out / "runs.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["grid", "variant", "seed", "test_accuracy", "test_accuracy_before_finetune", "sparsity",
                    "dense_test_accuracy", "alphas", "seconds"])
        for r in sorted(runs, key=lambda r: (r["grid"], r["variant"], r["seed"])):
            w.writerow([r["grid"], r["variant"], r["seed"], f"{r['test']:.4f}", f"{r['before']:.4f}",
                        f"{r['sparsity']:.4f}", f"{r['dense_test']:.4f}", " ".join(f"{a:g}" for a in r["alphas"]),
                        f"{r['seconds']:.1f}"])
    # Runs are deterministic per seed, so the rewards grid's baseline must equal Table 1's.
    same = [(x["test"], x["sparsity"]) == (y["test"], y["sparsity"]) for _, x, y in
            paired({"a": rw.get("purl", []), "b": t1.get("dense-rewards", [])}, "a", "b")]
    lines = ["# PuRL's Table 1 and the seeds' rewards on LeNet-300-100 / Fashion-MNIST", "",
             "Generated by `bench/reproduce.py purl-table1` from [raw/](raw) (one folder per run) and "
             "[provenance.json](provenance.json); per-run figures in [runs.csv](runs.csv). Do not edit by hand.", "",
             "**The seed** (PuRL, Table 1): on ResNet-50 / CIFAR-10, each row changes one choice of the MDP "
             "against the dense-reward baseline (3 trials; the paper does not say whether its accuracies are "
             "measured before or after fine-tuning). The paper concludes that "
             "dense rewards beat sparse ones by a wide margin, that pruning below alpha * std beats a per-layer "
             "magnitude target, that rewards 2 and 3 come close to the baseline without beating it, and that "
             "an action step of 0.2 Pareto-dominates the baseline.", "",
             "**Here**: LeNet-300-100 on Fashion-MNIST ([configs/lenet300-fashion.json]"
             "(../../../configs/lenet300-fashion.json), the default setup), DQN with PuRL's settings, 55 episodes, "
             "retraining on 1,000 images after each layer, the mean greedy alpha per layer over 5 episodes, then 3 "
             "epochs of fine-tuning. The seed's ResNet-50 costs tens of minutes per DQN run here (see the compute "
             "line of [purl-table2](../purl-table2/README.md)), too much for 35 runs, so this table uses the "
             "default network; purl-table2 compares the 3-dim and 108-dim states on ResNet-50 itself. "
             f"Dense test accuracy {dense_cell(runs)}. Mean +- standard error "
             "over the seeds each row has; * marks the Pareto front of the row means (accuracy, sparsity).", ""]
    if not complete:
        lines += [f"**Unfinished**: {len(runs)} of {SEEDS * (len(TABLE1) + len(REWARDS))} runs are in; the "
                  f"verdicts wait for all {SEEDS} seeds. `bench/reproduce.py purl-table1` resumes the rest.", ""]
    lines += ["## Table 1 ([configs/bench/purl-table1.json](../../../configs/bench/purl-table1.json))", ""]
    lines += table(t1, TABLE1, True)
    lines += ["", "## Verdicts", ""] + claims.mark("purl-table1", verdicts(t1, complete), prov["sessions"])
    front = pareto(t1)
    lines += ["", f"{len(front)} of {len(t1)} rows lie on the Pareto front of the row means: here the MDP "
              "choices move the agent along one accuracy-sparsity trade-off rather than beat one another.", ""
              ] if len(front) == len(t1) and complete else [""]
    lines += ["Accuracy inside an episode is measured after a 1,000-image retraining step; 3 epochs of "
              "fine-tuning then recover most of it, which is why rows far apart before fine-tuning end close "
              "together.", "",
              "## The seeds' rewards ([configs/bench/rewards.json](../../../configs/bench/rewards.json))", "",
              "The same MDP and agent with each reward the seeds define, an AMC-style one, and a user reward "
              "loaded from a plugin. The seeds make no claim about this comparison; it shows the trade-off "
              "each reward picks.", ""]
    lines += table(rw, REWARDS, False)
    lines += ["", f"The `purl` row reruns Table 1's baseline in another grid: identical results on {sum(same)} "
              f"of {len(same)} seeds (runs are deterministic per seed)."]
    lines += ["", "![accuracy against sparsity, mean +- SE per row](tradeoff.png)", ""]
    lines += claims.rules_section("purl-table1", prov["sessions"])
    lines += provenance_lines(prov, [
        f"- data: {prov['data']['dataset']}: {prov['data']['train']:,} training, {prov['data']['validation']:,} "
        f"validation, {prov['data']['test']:,} test images, standing in for CIFAR-10",
        f"- budget: {prov['budget']['episodes']} episodes (as PuRL) on {prov['budget']['network']}; retraining "
        f"per step on {prov['budget']['retrain_per_step']}; targets: {prov['budget']['targets']}",
        f"- compute: {sum(r['seconds'] for r in runs) / 60:.1f} run-minutes over {len(runs)} runs"])
    (out / "README.md").write_text("\n".join(lines) + "\n")
    plot([(t1, TABLE1, "Table 1"), (rw, REWARDS, "rewards")], out / "tradeoff.png")


def plot(panels, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("tradeoff.png skipped: matplotlib missing (python3-matplotlib)", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(12, 4.5))
    for ax, (rows, labels, title) in zip(axes, panels):
        for variant, _ in labels:
            mine = rows.get(variant, [])
            if not mine:
                continue
            a, ase = mean_se([100 * r["test"] for r in mine])
            s, sse = mean_se([100 * r["sparsity"] for r in mine])
            ax.errorbar([s], [a], xerr=[sse], yerr=[ase], fmt="o", capsize=3, label=variant)
        ax.set_title(title)
        ax.set_xlabel("sparsity (%)")
        ax.set_ylabel("test accuracy after fine-tuning (%)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

"""PuRL's Table 2 (3-dim against 108-dim state on ResNet-50) and Tables 3/6 (PuRL against a uniform
threshold on a residual network), on ResNet-50 (54 prunable layers, width 0.125) with Fashion-MNIST
standing in for ImageNet. configs/bench/purl-table2-resnet50.json on configs/resnet50-fashion.json.
Rendered by bench/reproduce.py into docs/results/purl-table2/: README.md, runs.csv and
tradeoff.png, from raw/ only."""
import csv
import json
import sys

import claims
import partial_runs
from results_common import ROOT, cell, dense_cell, load_bench_runs, provenance_lines, read_csv, share_verdict

EXPERIMENT = {
    "grids": ["purl-table2-resnet50"], "seeds": 5, "seed_major": True,
    "out": ROOT / "docs/results/purl-table2", "files": ("episodes.csv", "summary.json", "run.json"),
    # The dense network it prunes, committed by purl-table2-dense (bench/checkpoints.py).
    "partial_runs": True,  # a DQN run takes several sessions: its unfinished folder travels in partial/
    "checkpoints": "dense-resnet50-*.pt", "checkpoints_dir": ROOT / "docs/results/purl-table2-dense/checkpoints",
    "checkpoints_restore_only": True,  # purl-table2-dense owns that folder
    "provenance": {
        "data": {"dataset": "Fashion-MNIST (Debian dataset-fashion-mnist, original IDX files)",
                 "train": 55000, "validation": 5000, "test": 10000, "retrain_per_step": 250,
                 "evaluation_per_step": 1000, "stand_in_for": "ImageNet (not on this machine)"},
        "budget": {"episodes": 20, "ratio_to_paper": "0.36 of PuRL's 55 episodes; 0.25 of its 1,000 retrain "
                   "images per step (declared in bench/claims.json before the runs)", "agent": "dqn (PuRL settings)", "actions": "alpha 0.0..2.2 by 0.2 (as Table 2)",
                   "network": "ResNet-50, 54 prunable layers, width 0.125, small-input stem (16.4 M multiply-adds "
                              "per sample; purl-table2-dense chose the width by its declared rule)",
                   "finetune_epochs": 1, "paper": "ResNet-50 on ImageNet, 55 episodes, 3 trials"},
    },
}

SEED = {"compact": (47.6, 2.3, 87.4, 1.3), "per-layer": (51.0, 0.3, 82.0, 2.0)}
ROWS = [("compact", "3 (layer, accuracy, sparsity)"), ("per-layer", "108 ((a_i, p_i) for 54 layers)"),
        ("uniform", "- (one alpha for every layer)")]
SEEDS = 5


def load_runs(out):
    runs = load_bench_runs(out)
    for r in runs:
        r["episodes"] = len(read_csv(r["dir"] / "episodes.csv"))
    return runs


def paired(by_variant, a, b, key):
    """Seeds on which variant a's `key` is above variant b's, and the number of seeds both have."""
    bs = {r["seed"]: r[key] for r in by_variant.get(b, [])}
    pairs = [(r[key], bs[r["seed"]]) for r in by_variant.get(a, []) if r["seed"] in bs]
    return sum(x > y for x, y in pairs), len(pairs)


def word(wins, n, complete):
    return share_verdict(wins, n, complete, SEEDS) if n else "no paired seeds yet"


def run_setup(runs):
    """How the runs in raw/ were set up (from their own configs): the stem, the final policy, and the
    DQN episodes and retrain images per step (with PuRL's where they differ)."""
    configs = [json.loads((r["dir"] / "run.json").read_text())["config"] for r in runs]
    episodes = sorted({c["train"]["episodes"] for c, r in zip(configs, runs) if r["variant"] != "uniform"})
    samples = sorted({c["env"]["retrain"]["samples"] for c in configs})
    eps_text = " / ".join(str(e) for e in episodes) or "55"
    if episodes and episodes != [55]:
        eps_text += " (PuRL: 55)"
    img_text = " / ".join(f"{n:,}" for n in samples) or "1,000"
    if samples and samples != [1000]:
        img_text += " (PuRL: 1,000)"
    stems = {c["network"].get("stem") or "imagenet" for c in configs}
    finals = {c["train"].get("final_policy", "one_shot") for c in configs}
    stem = {"cifar": "and the small-input stem (3x3 stride 1, no max-pooling), the dense network of "
                     "[purl-table2-dense](../purl-table2-dense/README.md),",
            "imagenet": "with the ImageNet stem (7x7 stride 2 and max-pooling: 7x7 maps after it)"}
    final = {"episode": f"The final policy is applied as an episode (each layer pruned, then retrained on "
                        f"{' / '.join(f'{n:,}' for n in samples) or '1,000'} images, as in training); 'one-shot' is the same policy's mean alphas applied at once with "
                        "the batch-norm statistics re-estimated on 2,000 training images, before fine-tuning.",
             "one_shot": "The final policy's mean alphas are applied at once to the dense network, without retraining "
                       "or batch-norm refresh, before fine-tuning."}
    return {"episodes": eps_text, "images": img_text,
            "stem": " / ".join(stem.get(x, x) for x in sorted(stems)) if stems else "",
            "final": " / ".join(final.get(x, x) for x in sorted(finals)) if finals else ""}


def render(out):
    runs = load_runs(out)
    prov = json.loads((out / "provenance.json").read_text())
    by_variant = {}
    for r in sorted(runs, key=lambda r: (r["variant"], r["seed"])):
        by_variant.setdefault(r["variant"], []).append(r)
    complete = all(len(by_variant.get(v, [])) >= SEEDS for v, _ in ROWS)

    with open(out / "runs.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["variant", "seed", "test_accuracy", "test_accuracy_before_finetune", "one_shot_before_finetune",
                    "sparsity", "dense_test_accuracy", "episodes", "seconds"])
        for r in sorted(runs, key=lambda r: (r["seed"], r["variant"])):
            one_shot = "" if r["one_shot"] is None else f"{r['one_shot']:.4f}"
            w.writerow([r["variant"], r["seed"], f"{r['test']:.4f}", f"{r['before']:.4f}", one_shot, f"{r['sparsity']:.4f}",
                        f"{r['dense_test']:.4f}", r["episodes"], f"{r['seconds']:.0f}"])

    setup = run_setup(runs)
    lines = ["# PuRL on ResNet-50: state size (Table 2) and the uniform baseline (Tables 3 and 6)", "",
             "Generated by `bench/reproduce.py purl-table2` from [raw/](raw) (one folder per run) and "
             "[provenance.json](provenance.json); per-run figures in [runs.csv](runs.csv). Do not edit by hand.", "",
             "**The seed** (PuRL, Table 2): on ImageNet with ResNet-50, the 108-dim state (a_i, p_i per layer) "
             "reaches 51.0% +- 0.3% accuracy at 82.0% +- 2.0% sparsity against 47.6% +- 2.3% at 87.4% +- 1.3% for the "
             "3-dim state (action step 0.2, 3 trials); the paper concludes that the larger state is better. Tables 3 "
             "and 6: PuRL beats a uniform threshold at similar sparsity on WideResNet-28-10 / CIFAR-100 (80.6% against "
             "72.4%) and EfficientNet-B2 / ImageNet (74.5% against 68.9%).", "",
             f"**Here**: ResNet-50 with its 54 prunable layers at width 0.125 {setup['stem']} on Fashion-MNIST "
             "([configs/resnet50-fashion.json](../../../configs/resnet50-fashion.json), "
             "[configs/bench/purl-table2-resnet50.json](../../../configs/bench/purl-table2-resnet50.json)), DQN with "
             f"PuRL's settings, {setup['episodes']} episodes, alpha step 0.2, retraining on {setup['images']} images "
             "after each layer, one epoch of fine-tuning; the uniform baseline bisects one alpha for all layers to the 90% target. "
             f"{setup['final']} "
             f"Dense test accuracy {dense_cell(runs)}. Mean +- standard error over the seeds each row has.", ""]
    lines += partial_runs.progress_lines(out)
    if not complete:
        lines += [f"**Unfinished**: {len(runs)} of {SEEDS * len(ROWS)} runs are in; the verdicts wait for all "
                  f"{SEEDS} seeds. `bench/reproduce.py purl-table2` resumes the rest.", ""]
    lines += ["| state | agent | seeds | test accuracy (fine-tuned) | sparsity | accuracy before fine-tuning "
              "| one-shot, before fine-tuning | seed (ImageNet): accuracy / sparsity |", "|---|---|---|---|---|---|---|---|"]
    for variant, state in ROWS:
        mine = by_variant.get(variant, [])
        seed_cell = (f"{SEED[variant][0]}% +- {SEED[variant][1]}% / {SEED[variant][2]}% +- {SEED[variant][3]}%"
                     if variant in SEED else "-")
        agent = "uniform" if variant == "uniform" else "DQN"
        if not mine:
            lines.append(f"| {state} | {agent} | 0 | | | | | {seed_cell} |")
            continue
        acc, sp, bf = ([r[k] for r in mine] for k in ("test", "sparsity", "before"))
        one_shot = [r["one_shot"] for r in mine if r["one_shot"] is not None]
        one_shot_cell = cell(one_shot) if len(one_shot) == len(mine) else "-"
        lines.append(f"| {state} | {agent} | {len(mine)} | {cell(acc, digits=2)} | {cell(sp)} | {cell(bf)} "
                     f"| {one_shot_cell} | {seed_cell} |")

    lines += ["", "## Verdicts", ""]
    verdicts_from = len(lines)
    acc_wins, n = paired(by_variant, "per-layer", "compact", "test")
    sp_wins, _ = paired(by_variant, "per-layer", "compact", "sparsity")
    lines.append(f"- *The 108-dim state gives higher accuracy than the 3-dim one*: {word(acc_wins, n, complete)}: "
                 f"higher on {acc_wins} of {n} seeds; it is also "
                 f"sparser on {sp_wins} of {n} (the seed's 108-dim runs were less sparse).")
    for dqn in ("per-layer", "compact"):
        a, n = paired(by_variant, dqn, "uniform", "test")
        s, _ = paired(by_variant, dqn, "uniform", "sparsity")
        both = 0
        us = {r["seed"]: r for r in by_variant.get("uniform", [])}
        for r in by_variant.get(dqn, []):
            if r["seed"] in us and r["test"] > us[r["seed"]]["test"] and r["sparsity"] >= us[r["seed"]]["sparsity"]:
                both += 1
        lines.append(f"- *PuRL ({dqn} state) beats the uniform threshold on accuracy and sparsity*: "
                     f"{word(both, n, complete)}: more accurate on {a} of {n} seeds, at least as sparse on {s}, "
                     f"both on {both}.")
    lines[verdicts_from:] = claims.mark("purl-table2", lines[verdicts_from:], prov["sessions"])
    lines += ["", "![accuracy against sparsity, one dot per run](tradeoff.png)", ""]
    lines += claims.rules_section("purl-table2", prov["sessions"])
    lines += provenance_lines(prov, [
        f"- data: {prov['data']['dataset']}: {prov['data']['train']:,} training, {prov['data']['validation']:,} "
        f"validation, {prov['data']['test']:,} test images, standing in for ImageNet; "
        f"{prov['data']['retrain_per_step']:,} retraining images and {prov['data']['evaluation_per_step']:,} "
        "validation images per step",
        f"- budget: {prov['budget']['episodes']} episodes ({prov['budget'].get('ratio_to_paper', 'as PuRL')}), "
        f"{prov['budget']['network']}, "
        f"{prov['budget']['finetune_epochs']} fine-tuning epoch; the seed fine-tunes for 30 epochs per step on "
        "ImageNet, so per-run compute is several orders of magnitude below the seed's",
        f"- compute: {sum(r['seconds'] for r in runs) / 3600:.1f} run-hours over {len(runs)} runs"])
    (out / "README.md").write_text("\n".join(lines) + "\n")
    plot(by_variant, out / "tradeoff.png")


def plot(by_variant, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("tradeoff.png skipped: matplotlib missing (python3-matplotlib)", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for (variant, _), color in zip(ROWS, ("tab:orange", "tab:blue", "tab:gray")):
        mine = by_variant.get(variant, [])
        if mine:
            ax.scatter([r["sparsity"] * 100 for r in mine], [r["test"] * 100 for r in mine], color=color, label=variant)
    ax.set_xlabel("sparsity (%)")
    ax.set_ylabel("test accuracy after fine-tuning (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)

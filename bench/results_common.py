"""Helpers shared by the experiment modules of bench/reproduce.py (results_*.py)."""
import csv
import math
import json

from provenance import ROOT  # noqa: F401  (re-exported for the experiment modules)


def mean_se(values):
    """Mean and standard error of the mean (sample standard deviation / sqrt(n))."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    m = sum(values) / n
    if n < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1) / n)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def fmt(m, se, scale=100, digits=1, unit="%"):
    return f"{m * scale:.{digits}f}{unit} +- {se * scale:.{digits}f}{unit}"


def cell(values, scale=100, digits=1, unit="%"):
    """A table cell: mean +- SE of `values`, the value alone for one (no spread to show), empty for none."""
    if len(values) == 1:
        return f"{values[0] * scale:.{digits}f}{unit}"
    return fmt(*mean_se(values), scale=scale, digits=digits, unit=unit) if values else ""


def per_seed(runs, key):
    """One value per seed: the mean of `key` over that seed's runs. Standard errors are over seeds,
    never over the several runs (variants, rounds) that share a seed's value."""
    by_seed = {}
    for r in runs:
        by_seed.setdefault(r["seed"], []).append(r[key])
    return [sum(v) / len(v) for _, v in sorted(by_seed.items())]


def dense_cell(runs, key="dense_test", digits=2):
    """The dense network's accuracy: one value when every run prunes the same pretrained network
    (the bench caches it), else mean +- SE over seeds (one value per seed)."""
    values = [r[key] for r in runs]
    if values and len(set(values)) == 1:
        return f"{values[0] * 100:.{digits}f}% (the same pretrained network in every run)"
    return cell(per_seed(runs, key), digits=digits)


def provenance_lines(prov, extra):
    """The Provenance section: machine, every session's command/commit/wall time, then `extra`."""
    lines = ["## Provenance", "",
             f"- collected {prov['date']} on {prov['machine']['cores']} cores ({prov['machine']['cpu']}), "
             f"{prov['machine']['memory_gib']} GiB; the runs:"]
    for s in prov["sessions"]:
        lines.append(f"- `{s['command']}` at commit `{s['commit'][:10]}`{' (dirty tree)' if s['dirty'] else ''}, "
                     f"{s['date']}: {s['wall_seconds'] / 60:.1f} min wall time"
                     f"{' (stopped before the end: failed runs or an interruption; the finished runs are kept)' if s.get('failed') else ''}")
    for old in prov.get("superseded", []):
        lines.append(f"- superseded: {len(old['sessions'])} earlier session(s) ({old['note']})")
    return lines + extra


def bench_summaries(out):
    """(grid folder, run folder, variant, its summary.json) for every `prunegym bench` run in
    out/raw/<grid>/<variant>-s<seed>/, in folder order: the one walk every bench loader shares."""
    raw = out / "raw"
    for grid_dir in sorted(raw.iterdir()) if raw.is_dir() else []:
        for run in sorted(grid_dir.iterdir()):
            yield grid_dir, run, run.name.rsplit("-s", 1)[0], json.loads((run / "summary.json").read_text())


def load_bench_runs(out, alpha_default=None):
    """One dict per `prunegym bench` run in out/raw/<grid>/<variant>-s<seed>/ (its summary.json):
    grid, variant, seed, fine-tuned and before-fine-tuning test accuracy (and, with train.final_policy
    episode, the one-shot reading's before fine-tuning, else None), sparsity, dense test
    accuracy, alpha per layer (alpha_default where a layer has none), seconds, and the run folder."""
    runs = []
    for grid_dir, run, variant, s in bench_summaries(out):
        runs.append({"grid": grid_dir.name, "variant": variant, "seed": int(s["seed"]),
                     "test": s["after_finetune"]["test_accuracy"], "before": s["before_finetune"]["test_accuracy"],
                     "one_shot": s.get("one_shot_before_finetune", {}).get("test_accuracy"),
                     "sparsity": s["sparsity"], "dense_test": s["dense"]["test_accuracy"],
                     "alphas": [layer.get("alpha", alpha_default) for layer in s["layers"]],
                     "seconds": s["seconds"]["total"], "dir": run})
    return runs


def load_lottery_runs(out):
    """Every round of every `prunegym lottery` run under out/raw/<run>-s<seed>/lottery.csv."""
    rows = []
    for run in sorted((out / "raw").iterdir()):
        name, seed = run.name.rsplit("-s", 1)
        for r in read_csv(run / "lottery.csv"):
            rows.append({"run": name, "seed": int(seed), "strategy": r["strategy"], "round": int(r["round"]),
                         "target": float(r["target_sparsity"]), "remaining": float(r["remaining_total_pct"]),
                         "test": float(r["early_stop_test_accuracy"]), "final_test": float(r["test_accuracy"]),
                         "stop": int(r["early_stop_iteration"]), "iterations": int(r["iterations"]),
                         "seconds": float(r["seconds"])})
    return rows


def lottery_seed_runs(configs_and_names, seed):
    """(run name, `prunegym lottery` arguments) for one seed: seed and initialisation both set."""
    common = ["--set", f"seed={seed}", "--set", f"network.init_seed={seed}"]
    return [(name, ["lottery", "--config", config] + extra + common) for name, config, extra in configs_and_names]


def share_verdict(held, total, complete, seeds=5):
    """The verdict word for a claim that held in `held` of `total` cases (runs, seeds or (round, seed)
    pairs): it holds only if it held in every case; until every seed is in it is inconclusive."""
    if not complete:
        return f"inconclusive until all {seeds} seeds are in"
    if held == total:
        return "holds (on every seed)"
    if held >= 0.8 * total:
        return "holds on most"
    return "does not hold" if held <= total / 2 else "partly holds"

"""`prunegym bench` end to end on the tiny synthetic config: tables, caching, resume, plugins."""

import csv
import json
import os
import pathlib
import subprocess
import tempfile

import pytest

CLI = os.environ.get("PRUNEGYM_CLI", "build/bin/prunegym")
ROOT = pathlib.Path(os.environ.get("PRUNEGYM_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
TINY = str(ROOT / "configs" / "tiny-synthetic.json")
PLUGIN = pathlib.Path(CLI).resolve().parent.parent / "lib" / "libprunegym_reward_plugin.so"


@pytest.fixture(scope="module")
def env():
    with tempfile.TemporaryDirectory() as cache:
        yield dict(os.environ, PRUNEGYM_CACHE=cache, OMP_NUM_THREADS="1")


def write_grid(path, variants, **extra):
    grid = {"base": TINY, "agent": "q", "seeds": 2, "episodes": 4, "variants": variants, **extra}
    path.write_text(json.dumps(grid))
    return str(path)


def bench(args, env):
    return subprocess.run([CLI, "bench", *args], capture_output=True, text=True, env=env, timeout=600)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_variants_two_seeds_tables_and_cache(tmp_path, env):
    grid = write_grid(tmp_path / "grid.json", [
        {"name": "dense", "patch": {}},
        {"name": "sparse", "patch": {"env": {"timing": "sparse"}}},
    ])
    out = tmp_path / "out"
    proc = bench(["--grid", grid, "--jobs", "2", "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    assert "4 to run" in proc.stderr
    table = rows(out / "results.csv")
    assert sorted((r["variant"], r["seed"]) for r in table) == [("dense", "0"), ("dense", "1"), ("sparse", "0"), ("sparse", "1")]
    summary = json.loads((out / "results.json").read_text())
    for v in summary["variants"]:
        mine = [float(r["test_accuracy"]) for r in table if r["variant"] == v["name"]]
        mean = sum(mine) / 2
        se = abs(mine[0] - mine[1]) / 2  # n = 2: sd = |a - b| / sqrt(2), se = sd / sqrt(2)
        assert v["accuracy"]["mean"] == pytest.approx(mean)
        assert v["accuracy"]["se"] == pytest.approx(se)
        assert len(v["curve"]["mean"]) == 4
        # The MACs left: each run's remaining over dense MACs, from its summary.json; the variant's
        # mean over its runs (every run counted them).
        fractions = []
        for r in table:
            if r["variant"] == v["name"]:
                cost = json.loads((out / r["run"] / "summary.json").read_text())["cost"]
                assert float(r["macs_fraction"]) == pytest.approx(cost["remaining_macs"] / cost["macs"])
                fractions.append(float(r["macs_fraction"]))
        assert 0 < min(fractions) and max(fractions) <= 1
        assert v["macs_fraction"]["mean"] == pytest.approx(sum(fractions) / 2)
    md = (out / "results.md").read_text()
    assert "| variant | accuracy | sparsity | MACs left |" in md and "dense" in md and "sparse" in md
    # The sparse variant's runs really ran with sparse timing.
    sparse_run = next(r["run"] for r in table if r["variant"] == "sparse")
    assert json.loads((out / sparse_run / "config.json").read_text())["env"]["timing"] == "sparse"
    if "skipped" not in proc.stderr:
        assert (out / "curves.png").exists() and (out / "pareto.png").exists()

    # A rerun recomputes nothing and gives the same table.
    again = bench(["--grid", grid, "--jobs", "2", "--out", str(out)], env)
    assert again.returncode == 0, again.stderr
    assert "4 cached, 0 to run" in again.stderr
    assert rows(out / "results.csv") == table

    # A lost run is redone alone; a changed patch gets its own runs.
    (out / table[0]["run"] / "summary.json").unlink()
    redo = bench(["--grid", grid, "--out", str(out)], env)
    assert "3 cached, 1 to run" in redo.stderr, redo.stderr
    grid = write_grid(tmp_path / "grid.json", [
        {"name": "dense", "patch": {}},
        {"name": "sparse", "patch": {"env": {"timing": "sparse", "reward": {"target_sparsity": 0.5}}}},
    ])
    changed = bench(["--grid", grid, "--out", str(out), "--dry-run"], env)
    assert "2 cached, 2 to run" in changed.stderr, changed.stderr


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path, env):
    grid = write_grid(tmp_path / "grid.json", [{"name": "only", "patch": {}}], seeds=1, episodes=6)
    out = tmp_path / "out"
    plan = bench(["--grid", grid, "--out", str(out), "--dry-run"], env)
    run_dir = pathlib.Path(plan.stdout.split()[1])
    # Start the run by hand and stop it after 2 episodes, as a crash or Ctrl-C would leave it.
    run_dir.mkdir(parents=True)
    stopped = subprocess.run([CLI, "train", "--config", TINY, "--agent", "q", "--seed", "0", "--episodes", "6",
                              "--out", str(run_dir), "--stop-after", "2"], capture_output=True, text=True, env=env)
    assert stopped.returncode == 0, stopped.stderr
    proc = bench(["--grid", grid, "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    assert "resuming q at episode 3 of 6" in (run_dir / "log.txt").read_text()
    assert len(rows(run_dir / "episodes.csv")) == 6


def test_bad_grids_are_rejected_before_anything_runs(tmp_path, env):
    grid = write_grid(tmp_path / "grid.json", [{"name": "typo", "patch": {"env": {"timming": "sparse"}}}])
    proc = bench(["--grid", grid, "--out", str(tmp_path / "out")], env)
    assert proc.returncode == 2
    assert "variant 'typo'" in proc.stderr and "env.timming" in proc.stderr
    assert not (tmp_path / "out").exists()
    assert "--jobs" in subprocess.run([CLI, "bench", "--help"], capture_output=True, text=True).stdout


@pytest.mark.skipif(not PLUGIN.exists(), reason="the example plugin is not built")
def test_a_plugin_reward_is_usable_in_a_grid(tmp_path, env):
    grid = write_grid(tmp_path / "grid.json", [{"name": "balanced", "patch": {"env": {"reward": {"name": "balanced"}}}}],
                      seeds=1, plugins=[str(PLUGIN)])
    out = tmp_path / "out"
    proc = bench(["--grid", grid, "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    (row,) = rows(out / "results.csv")
    run_config = json.loads((out / row["run"] / "config.json").read_text())
    assert run_config["env"]["reward"]["name"] == "balanced"
    # Without the plugin the reward is unknown, and the error says so.
    grid = write_grid(tmp_path / "grid2.json", [{"name": "balanced", "patch": {"env": {"reward": {"name": "balanced"}}}}])
    missing = bench(["--grid", grid, "--out", str(tmp_path / "out2")], env)
    assert missing.returncode == 2 and "balanced" in missing.stderr


def test_a_grid_over_a_graph_network(tmp_path, env):
    # Reward variants on the GCN config: the DQN agent trains on graph episodes like any other.
    grid = tmp_path / "graph.json"
    grid.write_text(json.dumps({
        "base": str(ROOT / "configs" / "tiny-graph.json"), "agent": "dqn", "seeds": 1, "episodes": 3,
        "variants": [{"name": "purl", "patch": {}},
                     {"name": "lottery_q", "patch": {"env": {"reward": {"name": "lottery_q"}}}}]}))
    out = tmp_path / "out"
    proc = bench(["--grid", str(grid), "--jobs", "2", "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    table = rows(out / "results.csv")
    assert sorted(r["variant"] for r in table) == ["lottery_q", "purl"]
    for r in table:
        assert 0.4 < float(r["test_accuracy"]) <= 1 and 0 <= float(r["sparsity"]) < 1


def test_one_cell_runs_alone_and_matches_the_pool(tmp_path, env):
    """`--cell I` (what a Slurm array task runs) runs exactly cell I into the shared folder, with
    the figures the local pool gets for it."""
    grid = write_grid(tmp_path / "grid.json", [{"name": "a", "patch": {}}, {"name": "b", "patch": {"env": {"timing": "sparse"}}}])
    pool = bench(["--grid", grid, "--out", str(tmp_path / "pool"), "--jobs", "2"], env)
    assert pool.returncode == 0, pool.stderr
    listing = bench(["--grid", grid, "--out", str(tmp_path / "cells"), "--dry-run"], env).stdout.split("\n")
    cell = bench(["--grid", grid, "--out", str(tmp_path / "cells"), "--cell", "2", "--threads", "1"], env)
    assert cell.returncode == 0, cell.stderr
    assert "cell 2: b seed 0" in cell.stderr
    done = [p.parent.name for p in (tmp_path / "cells" / "runs").glob("*/summary.json")]
    assert done == [pathlib.Path(listing[2].split()[1]).name]
    summary = json.loads((tmp_path / "cells" / "runs" / done[0] / "summary.json").read_text())
    reference = json.loads((tmp_path / "pool" / "runs" / done[0] / "summary.json").read_text())
    assert summary["sparsity"] == reference["sparsity"] and summary["after_finetune"] == reference["after_finetune"]
    again = bench(["--grid", grid, "--out", str(tmp_path / "cells"), "--cell", "2"], env)
    assert again.returncode == 0 and "finished already" in again.stderr
    bad = bench(["--grid", grid, "--out", str(tmp_path / "cells"), "--cell", "4"], env)
    assert bad.returncode == 2 and "the grid has 4 cells (0..3)" in bad.stderr


def test_slurm_back_end_errors_and_queued_cells_without_a_cluster(tmp_path, env):
    grid = write_grid(tmp_path / "grid.json", [{"name": "a", "patch": {}}], seeds=2, episodes=2)
    out = tmp_path / "out"
    no_slurm = dict(env, PATH=str(tmp_path / "empty"), PRUNEGYM_SLURM_BIN="")
    p = bench(["--grid", grid, "--out", str(out), "--backend", "slurm"], no_slurm)
    assert p.returncode == 2 and "sbatch is not on PATH" in p.stderr
    # A cell an earlier submission still has queued is Slurm's: the local back end leaves it alone.
    bin_dir = tmp_path / "fake-slurm"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text("#!/bin/sh\necho '4242_1|RUNNING'\n")
    (bin_dir / "squeue").chmod(0o755)
    (out / "slurm").mkdir(parents=True)
    (out / "slurm" / "jobs.json").write_text(json.dumps({"jobs": [{"job": "4242", "cells": [0, 1]}]}))
    p = bench(["--grid", grid, "--out", str(out)], dict(env, PRUNEGYM_SLURM_BIN=str(bin_dir)))
    assert p.returncode == 0, p.stderr
    assert "1 runs are queued in Slurm job 4242" in p.stderr and "1 to run" in p.stderr
    assert [r["seed"] for r in rows(out / "results.csv")] == ["0"]


def test_the_step_profile_accounts_for_every_operator_call(tmp_path, env):
    """bench_profile charges every operator call its self time: the shares add up to one, the
    operator time fits inside the profiled steps, the MLP's products are there at the count the
    step implies; bad input is an error that says why; profile_report renders the record."""
    binary = pathlib.Path(CLI).resolve().parent / "bench_profile"
    proc = subprocess.run([str(binary), TINY, "2"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    ops = {op["name"]: op for op in row["operators"]}
    assert abs(sum(op["share"] for op in ops.values()) - 1) < 1e-6
    assert abs(sum(op["calls_per_step"] for op in ops.values()) - row["calls_per_step"]) < 1e-6
    assert 0 < row["op_ms_per_step"] <= row["profiled_step_ms"] * 1.05
    # Retraining: 256 images in batches of 64, three linear layers forward, each an addmm.
    assert ops["aten::addmm"]["calls_per_step"] >= 4 * 3
    assert row["top_level_calls_per_step"] <= row["calls_per_step"]
    bad = subprocess.run([str(binary), TINY, "0"], capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "steps must be at least 1" in bad.stderr
    import sys
    sys.path.insert(0, str(ROOT / "bench"))
    import profile_report
    record = {"provenance": {"command": "test", "commit": "0" * 40, "dirty": False, "date": "now", "steps": 2},
              "machine": {"cores": 2}, "rows": [{"label": "tiny", **row}]}
    text = profile_report.render(record)
    assert "**tiny**" in text and "`aten::addmm`" in text

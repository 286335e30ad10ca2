"""`prunegym lottery` end to end on the tiny synthetic config, and rounds episodes through `train`."""

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
FAST = ["--set", "lottery.train.epochs=2", "--set", "lottery.eval_every=10", "--threads", "2"]


@pytest.fixture(scope="module")
def env():
    with tempfile.TemporaryDirectory() as cache:
        yield dict(os.environ, PRUNEGYM_CACHE=cache, OMP_NUM_THREADS="2")


def run(args, env):
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=600)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_lottery_writes_every_table_and_resumes_without_recomputing(tmp_path, env):
    out = tmp_path / "lt"
    args = ["lottery", "--config", TINY, "--out", str(out), "--strategies", "rewind_init,reinit,random_mask", *FAST]
    first = run(args, env)
    assert first.returncode == 0, first.stderr
    table = rows(out / "lottery.csv")
    assert len(table) == 3 * 6  # dense run + 5 rounds per strategy
    for strategy in ("rewind_init", "reinit", "random_mask"):
        mine = [r for r in table if r["strategy"] == strategy]
        remaining = [float(r["remaining_pct"]) for r in mine]
        assert remaining[0] == 100.0
        assert remaining[-1] == pytest.approx(100 * 0.8 ** 5, abs=0.05)
        assert remaining == sorted(remaining, reverse=True)
        for r in mine:
            assert 0 < int(r["early_stop_iteration"]) <= int(r["iterations"])
            assert 0.0 <= float(r["early_stop_test_accuracy"]) <= 1.0
    # Every strategy shares the dense run.
    assert len({r["test_accuracy"] for r in table if r["round"] == "0"}) == 1
    md = (out / "lottery.md").read_text()
    assert "| round | remaining % | rewind_init | reinit | random_mask |" in md
    summary = json.loads((out / "lottery.json").read_text())
    assert summary["schedule"] == pytest.approx([1 - 0.8 ** r for r in range(1, 6)])
    assert (out / "lottery.png").exists() or "lottery.png skipped" in first.stderr

    # Rerunning the same command reads everything back and prints the same table.
    again = run(args, env)
    assert again.returncode == 0, again.stderr
    assert "read back" in again.stderr and "round 1/5" not in again.stderr
    assert rows(out / "lottery.csv") == table

    # A strategy whose rounds are lost is redone from the shared dense run, identically.
    for r in range(1, 6):
        (out / "state" / f"reinit-r{r}.json").unlink()
    redone = run(args, env)
    assert redone.returncode == 0, redone.stderr
    assert "[reinit] round 1/5" in redone.stderr and "[rewind_init] round 1/5" not in redone.stderr
    strip = lambda t: [{k: v for k, v in r.items() if k != "seconds"} for r in t]  # noqa: E731
    assert strip(rows(out / "lottery.csv")) == strip(table)


def test_lottery_resume_after_interruption_matches(tmp_path, env):
    out = tmp_path / "lt"
    args = ["lottery", "--config", TINY, "--out", str(out), "--strategies", "rewind_init", *FAST]
    assert run(args, env).returncode == 0
    full = rows(out / "lottery.csv")
    # Simulate a stop during round 3: rounds 3-5 never finished, round 2's network is kept.
    state = out / "state"
    for r in (3, 4, 5):
        (state / f"rewind_init-r{r}.json").unlink()
    (state / "rewind_init-r5.pt").rename(state / "rewind_init-r2.pt")  # stands in for round 2's network
    proc = run(args, env)
    assert proc.returncode == 0, proc.stderr
    assert "rounds 1-2 read back" in proc.stderr and "round 3/5" in proc.stderr


def test_lottery_rejects_a_changed_config_and_bad_strategies(tmp_path, env):
    out = tmp_path / "lt"
    assert run(["lottery", "--config", TINY, "--out", str(out), "--strategies", "keep", *FAST], env).returncode == 0
    changed = run(["lottery", "--config", TINY, "--out", str(out), "--strategies", "keep", *FAST,
                   "--set", "lottery.rate=0.3"], env)
    assert changed.returncode == 2 and "different config" in changed.stderr and "--force" in changed.stderr
    forced = run(["lottery", "--config", TINY, "--out", str(out), "--strategies", "keep", *FAST,
                  "--set", "lottery.rate=0.3", "--force"], env)
    assert forced.returncode == 0, forced.stderr
    bad = run(["lottery", "--config", TINY, "--out", str(out), "--strategies", "winning"], env)
    assert bad.returncode == 2 and "rewind_init" in bad.stderr
    assert "keep" in run(["lottery", "--help"], env).stdout


def test_q_learning_trains_on_rounds_episodes(tmp_path, env):
    out = tmp_path / "q"
    proc = run(["train", "--config", TINY, "--agent", "q", "--episodes", "12", "--out", str(out), "--threads", "2",
                "--set", "env.episode=rounds", "--set", "env.criterion=magnitude_target", "--set", "env.max_steps=6",
                "--set", "env.reward.name=lottery_q", "--set", "env.reward.target_sparsity=0.7",
                "--set", "lottery.train.epochs=1", "--set", "lottery.train.samples=1000", "--set", "lottery.train.batch_size=50",
                "--set", "train.finetune.epochs=0"], env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episode"] == "rounds"
    values = summary["final_values"]
    assert 1 <= len(values) <= 6 and all(0.1 <= v <= 0.5 for v in values)
    # The greedy episode's rates compound to the network's sparsity (layer-wise scope, every layer).
    keep = 1.0
    for v in values:
        keep *= 1 - v
    assert summary["sparsity"] == pytest.approx(1 - keep, abs=0.01)
    episodes = rows(out / "episodes.csv")
    assert len(episodes) == 12
    assert all(int(e["steps"]) <= 6 for e in episodes)


def test_lottery_on_a_graph_network(tmp_path, env):
    out = tmp_path / "gcn"
    graph = str(ROOT / "configs" / "tiny-graph.json")
    done = run(["lottery", "--config", graph, "--out", str(out), "--strategies", "keep,rewind_init",
                "--set", "lottery.sparsities=[0.5,0.9]", "--threads", "2"], env)
    assert done.returncode == 0, done.stderr
    table = rows(out / "lottery.csv")
    assert [r["round"] for r in table] == ["0", "1", "2"] * 2
    # Global pruning over the two graph layers hits the schedule exactly over both together.
    remaining = [float(r["remaining_pct"]) for r in table if r["strategy"] == "keep"]
    assert remaining == pytest.approx([100, 50, 10], abs=0.05)
    dense = float(table[0]["early_stop_test_accuracy"])
    assert dense > 0.6

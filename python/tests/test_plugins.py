"""An agent from a plugin library, used by `prunegym train` and `prunegym bench` like a built-in one."""

import csv
import json
import os
import pathlib
import subprocess
import tempfile

import pytest

CLI = os.environ.get("PRUNEGYM_CLI", "build/bin/prunegym")
ROOT = pathlib.Path(os.environ.get("PRUNEGYM_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
TINY = str((ROOT / "configs" / "tiny-synthetic.json").resolve())
PLUGIN = pathlib.Path(CLI).resolve().parent.parent / "lib" / "libprunegym_agent_plugin.so"

pytestmark = pytest.mark.skipif(not PLUGIN.exists(), reason="the example agent plugin is not built")


@pytest.fixture(scope="module")
def env():
    with tempfile.TemporaryDirectory() as cache:
        yield dict(os.environ, PRUNEGYM_CACHE=cache, OMP_NUM_THREADS="1")


def run(args, env):
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=600)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_train_uses_a_plugin_agent_and_resumes_it(tmp_path, env):
    out = tmp_path / "bandit"
    base = ["--plugin", str(PLUGIN), "train"]
    stopped = run([*base, "--config", TINY, "--agent", "layer_bandit", "--episodes", "8", "--stop-after", "5",
                   "--out", str(out)], env)
    assert stopped.returncode == 0, stopped.stderr
    assert len(rows(out / "episodes.csv")) == 5
    done = run([*base, "--resume", str(out)], env)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["agent"] == "layer_bandit" and len(rows(out / "episodes.csv")) == 8
    assert 0 < summary["sparsity"] < 1
    # The same run uninterrupted gives the same policy: the plugin's checkpoint holds its whole state.
    full = tmp_path / "full"
    assert run([*base, "--config", TINY, "--agent", "layer_bandit", "--episodes", "8", "--out", str(full)],
               env).returncode == 0
    assert json.loads((full / "summary.json").read_text())["final_values"] == summary["final_values"]


def test_the_plugin_agent_reads_its_own_options_strictly(tmp_path, env):
    proc = run(["--plugin", str(PLUGIN), "train", "--config", TINY, "--agent", "layer_bandit", "--episodes", "2",
                "--set", "agents.layer_bandit.explore=1", "--out", str(tmp_path / "x")], env)
    assert proc.returncode == 2 and "agents.layer_bandit.explore" in proc.stderr
    # Without the plugin the agent is unknown and the error lists what is registered.
    proc = run(["train", "--config", TINY, "--agent", "layer_bandit", "--out", str(tmp_path / "y")], env)
    assert proc.returncode == 2 and "unknown agent 'layer_bandit'" in proc.stderr and "dqn" in proc.stderr


def test_bench_runs_a_plugin_agent_from_the_grid(tmp_path, env):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({
        "base": TINY, "agent": "layer_bandit", "seeds": 2, "episodes": 4, "plugins": [str(PLUGIN)],
        "variants": [{"name": "ucb2", "patch": {}},
                     {"name": "ucb05", "patch": {"agents": {"layer_bandit": {"exploration": 0.5}}}}]}))
    out = tmp_path / "out"
    proc = run(["bench", "--grid", str(grid), "--jobs", "2", "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    table = rows(out / "results.csv")
    assert sorted(r["variant"] for r in table) == ["ucb05", "ucb05", "ucb2", "ucb2"]
    for r in table:
        summary = json.loads((out / r["run"] / "summary.json").read_text())
        assert summary["agent"] == "layer_bandit"


def test_help_lists_plugin_agents():
    proc = subprocess.run([CLI, "--plugin", str(PLUGIN), "train", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "layer_bandit" in proc.stdout and "--resume" in proc.stdout

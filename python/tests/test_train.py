"""`prunegym train` end to end on the tiny synthetic config: outputs, resume, Ctrl-C."""

import csv
import json
import os
import pathlib
import signal
import subprocess
import tempfile
import time

import pytest

CLI = os.environ.get("PRUNEGYM_CLI", "build/bin/prunegym")
ROOT = pathlib.Path(os.environ.get("PRUNEGYM_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
TINY = str(ROOT / "configs" / "tiny-synthetic.json")


@pytest.fixture(scope="module")
def env():
    with tempfile.TemporaryDirectory() as cache:
        yield dict(os.environ, PRUNEGYM_CACHE=cache, OMP_NUM_THREADS="2")


def train(args, env, **kw):
    return subprocess.run([CLI, "train", "--config", TINY, "--threads", "2", *args],
                          capture_output=True, text=True, env=env, timeout=600, **kw)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def strip_time(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


@pytest.mark.parametrize("agent", ["dqn", "q", "ppo", "uniform", "random"])
def test_train_writes_every_result_file(tmp_path, env, agent):
    out = tmp_path / agent
    proc = train(["--agent", agent, "--episodes", "6", "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    for name in ("episodes.csv", "summary.json", "agent.ckpt", "pruned_model.pt", "config.json", "run.json"):
        assert (out / name).exists(), name
    assert len(rows(out / "episodes.csv")) == 6
    s = json.loads((out / "summary.json").read_text())
    assert [l["layer"] for l in s["layers"]] == ["fc1.weight", "fc2.weight", "fc3.weight"]
    assert 0 < s["sparsity"] < 1
    # The reported global sparsity matches the per-layer counts.
    remaining = sum(l["remaining"] for l in s["layers"])
    assert s["remaining"] == remaining
    assert s["sparsity"] == pytest.approx(1 - remaining / s["total"])
    for phase in ("dense", "before_finetune", "after_finetune"):
        assert 0 < s[phase]["test_accuracy"] <= 1
    assert s["seconds"]["total"] > 0 and s["peak_rss_mib"] > 0
    assert len(s["greedy_episodes"]) == 5
    # The final alphas are the mean of the greedy episodes' alphas.
    for i, layer in enumerate(s["layers"]):
        mean = sum(e["values"][i] for e in s["greedy_episodes"]) / 5
        assert layer["alpha"] == pytest.approx(mean)
    assert (out / "curves.png").exists(), proc.stderr
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("agent", ["q", "dqn"])
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, env, agent):
    full, part = tmp_path / "full", tmp_path / "part"
    assert train(["--agent", agent, "--episodes", "12", "--seed", "3", "--out", str(full)], env).returncode == 0
    stopped = train(["--agent", agent, "--episodes", "12", "--seed", "3", "--stop-after", "5", "--out", str(part)], env)
    assert stopped.returncode == 0 and "--resume" in stopped.stderr
    assert len(rows(part / "episodes.csv")) == 5
    assert not (part / "summary.json").exists()
    proc = subprocess.run([CLI, "train", "--resume", str(part)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert strip_time(rows(part / "episodes.csv")) == strip_time(rows(full / "episodes.csv"))
    a = json.loads((full / "summary.json").read_text())
    b = json.loads((part / "summary.json").read_text())
    assert [l["alpha"] for l in a["layers"]] == [l["alpha"] for l in b["layers"]]


def test_ctrl_c_saves_and_resume_continues(tmp_path, env):
    out = tmp_path / "interrupted"
    p = subprocess.Popen([CLI, "train", "--config", TINY, "--agent", "q", "--episodes", "100000",
                          "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (out / "episodes.csv").exists() and len(rows(out / "episodes.csv")) >= 3:
            break
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "--resume" in err
    state = json.loads((out / "run.json").read_text())
    assert state["finished"] is False
    done = len(state["records"])
    assert done >= 3 and len(rows(out / "episodes.csv")) == done
    proc = subprocess.run([CLI, "train", "--resume", str(out), "--episodes", str(done + 2)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert len(rows(out / "episodes.csv")) == done + 2
    assert json.loads((out / "run.json").read_text())["finished"] is True


def test_an_existing_run_is_not_overwritten_without_force(tmp_path, env):
    out = tmp_path / "run"
    assert train(["--agent", "random", "--episodes", "2", "--out", str(out)], env).returncode == 0
    proc = train(["--agent", "random", "--episodes", "2", "--out", str(out)], env)
    assert proc.returncode == 2
    assert "--resume" in proc.stderr and "--force" in proc.stderr
    assert train(["--agent", "random", "--episodes", "2", "--out", str(out), "--force"], env).returncode == 0


def test_unknown_agent_and_bad_agent_option_are_rejected(tmp_path, env):
    proc = train(["--agent", "sarsa", "--out", str(tmp_path / "x")], env)
    assert proc.returncode == 2 and "unknown agent 'sarsa'" in proc.stderr
    proc = train(["--agent", "dqn", "--set", "agents.dqn.gama=0.9", "--out", str(tmp_path / "y")], env)
    assert proc.returncode == 2 and "agents.dqn.gama" in proc.stderr


@pytest.mark.parametrize("agent", ["q", "dqn"])
def test_greedy_checks_are_recorded_and_survive_a_resume(tmp_path, env, agent):
    """train.greedy_every N: one greedy episode (no exploring, no learning) after every N training
    episodes, in greedy.csv; a resumed run records the same checks as an uninterrupted one."""
    full, part = tmp_path / "full", tmp_path / "part"
    greedy = ["--set", "train.greedy_every=3"]
    assert train(["--agent", agent, "--episodes", "9", "--seed", "2", "--out", str(full), *greedy], env).returncode == 0
    checks = rows(full / "greedy.csv")
    assert [c["after_episodes"] for c in checks] == ["3", "6", "9"]
    assert all(0 <= float(c["sparsity"]) <= 1 and len(c["values"].split(";")) == 3 for c in checks)
    stopped = train(["--agent", agent, "--episodes", "9", "--seed", "2", "--stop-after", "4", "--out", str(part), *greedy], env)
    assert stopped.returncode == 0 and [c["after_episodes"] for c in rows(part / "greedy.csv")] == ["3"]
    proc = subprocess.run([CLI, "train", "--resume", str(part)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert rows(part / "greedy.csv") == checks
    assert strip_time(rows(part / "episodes.csv")) == strip_time(rows(full / "episodes.csv"))
    bad = train(["--agent", agent, "--set", "train.greedy_every=-1", "--out", str(tmp_path / "bad")], env)
    assert bad.returncode == 2 and "train.greedy_every" in bad.stderr


def test_validate_replays_a_dqn_run_exactly_and_names_an_edited_number(tmp_path, env):
    out = tmp_path / "dqn"
    assert train(["--agent", "dqn", "--episodes", "4", "--out", str(out)], env).returncode == 0
    ok = subprocess.run([CLI, "validate", str(out), "--no-finetune"], capture_output=True, text=True, env=env,
                        timeout=600)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "exact on 2 threads" in ok.stdout and "valid: every judged number matches" in ok.stdout
    report = json.loads((out / "validation.json").read_text())
    assert report["ok"] and report["mode"] == "exact" and not report["finetuned"]
    summary = json.loads((out / "summary.json").read_text())
    summary["sparsity"] += 0.01
    (out / "summary.json").write_text(json.dumps(summary))
    bad = subprocess.run([CLI, "validate", str(out), "--no-finetune"], capture_output=True, text=True, env=env,
                         timeout=600)
    assert bad.returncode == 1
    assert "sparsity" in bad.stdout and "DIFFERS" in bad.stdout and "NOT valid: 1 of" in bad.stdout
    missing = subprocess.run([CLI, "validate", str(tmp_path / "nothing")], capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "is not a folder" in missing.stderr

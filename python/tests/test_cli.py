"""The `prunegym episode` JSON-lines contract that scripts and other languages rely on."""

import json
import os
import pathlib
import subprocess
import tempfile

import pytest

CLI = os.environ.get("PRUNEGYM_CLI", "build/bin/prunegym")
ROOT = pathlib.Path(os.environ.get("PRUNEGYM_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
TINY = str(ROOT / "configs" / "tiny-synthetic.json")


@pytest.fixture(scope="module")
def cache_env():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, PRUNEGYM_CACHE=cache, OMP_NUM_THREADS="2")
        yield env


def run(args, env):
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=300)


def test_episode_prints_one_json_object_per_step_and_a_summary(cache_env):
    proc = run(["episode", "--config", TINY, "--actions", "3,10,22", "--seed", "4"], cache_env)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "reset" in lines[0]
    steps, summary = lines[1:-1], lines[-1]["summary"]
    assert [s["info"]["layer"] for s in steps] == ["fc1.weight", "fc2.weight", "fc3.weight"]
    assert [s["terminated"] for s in steps] == [False, False, True]
    assert [round(s["info"]["alpha"], 6) for s in steps] == [0.3, 1.0, 2.2]
    for s in steps:
        layer, accuracy, sparsity = s["observation"]
        assert 0.0 <= accuracy <= 1.0 and 0.0 <= sparsity <= 1.0
        assert sparsity == pytest.approx(s["info"]["sparsity"], abs=1e-6)
    sparsities = [s["info"]["sparsity"] for s in steps]
    assert sparsities == sorted(sparsities)
    assert summary["total_reward"] == pytest.approx(sum(s["reward"] for s in steps))
    assert summary["sparsity"] == pytest.approx(sparsities[-1])


def test_same_seed_gives_the_same_output(cache_env):
    a = run(["episode", "--config", TINY, "--alpha", "1.2", "--seed", "7"], cache_env)
    b = run(["episode", "--config", TINY, "--alpha", "1.2", "--seed", "7"], cache_env)
    assert a.returncode == b.returncode == 0
    strip = lambda out: [json.loads(l).get("observation") for l in out.splitlines()]
    assert strip(a.stdout) == strip(b.stdout)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--actions", "3,10,23"], "outside the action space"),
        (["--actions", "3,10"], "has 2 values but the episode has 3 steps"),
        (["--alpha", "9"], "not near any action value"),
        (["--alpha", "1", "--set", "env.rewrad.name=purl"], "env.rewrad"),
        (["--alpha", "1", "--bogus"], "unknown option --bogus"),
    ],
)
def test_bad_input_exits_2_with_a_one_line_error(cache_env, args, message):
    proc = run(["episode", "--config", TINY, *args], cache_env)
    assert proc.returncode == 2
    errors = [l for l in proc.stderr.splitlines() if "error" in l]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert proc.stdout == ""


def test_missing_dataset_names_the_package(cache_env):
    proc = run(["episode", "--config", TINY, "--alpha", "1",
                "--set", "data.source=idx", "--set", "data.path=/nonexistent"], cache_env)
    assert proc.returncode == 2
    assert "dataset-fashion-mnist" in proc.stderr


def test_help_teaches_the_options():
    proc = subprocess.run([CLI, "episode", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for option in ("--actions", "--alpha", "--seed", "--format", "--set"):
        assert option in proc.stdout


REFERENCE_BLAS_DIR = "/usr/lib/x86_64-linux-gnu/blas"


@pytest.mark.skipif(not os.path.exists(REFERENCE_BLAS_DIR + "/libblas.so.3"),
                    reason="the reference BLAS (libblas3) is not installed")
def test_reference_blas_is_detected_and_the_fix_printed():
    env = dict(os.environ, LD_LIBRARY_PATH=REFERENCE_BLAS_DIR)
    proc = subprocess.run([CLI, "info", "--help"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0
    assert "reference BLAS" in proc.stderr
    assert "libopenblas0-openmp" in proc.stderr


def test_no_blas_warning_with_openblas():
    proc = subprocess.run([CLI, "info", "--help"], capture_output=True, text=True)
    assert "reference BLAS" not in proc.stderr


def test_an_unknown_command_lists_the_commands():
    proc = subprocess.run([CLI, "prune"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown command 'prune'" in proc.stderr and "train" in proc.stderr and proc.stdout == ""
    proc = subprocess.run([CLI], capture_output=True, text=True)
    assert proc.returncode == 2 and "Subcommands" in proc.stdout  # no command: the overview, exit 2


def test_info_describes_a_config_without_training_then_reports_the_cached_accuracy():
    # ResNet-50 would pretrain for 30 epochs: info must read its architecture alone.
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, PRUNEGYM_CACHE=cache, OMP_NUM_THREADS="2")
        proc = run(["info", "--config", str(ROOT / "configs" / "resnet50-fashion.json")], env)
        assert proc.returncode == 0, proc.stderr
        assert "not trained yet" in proc.stdout and "prunegym pretrain" in proc.stdout
        assert "pretraining" not in proc.stderr
        assert list(pathlib.Path(cache).iterdir()) == []  # nothing trained, nothing cached
        layers = [line for line in proc.stdout.splitlines()
              if line.startswith("  ") and ".weight" in line and "->" not in line]  # not the channel groups
        assert len(layers) == 54
        actions = next(line for line in proc.stdout.splitlines() if line.startswith("actions:"))
        assert json.loads(actions.split(":", 1)[1])["n"] == 23  # the shipped grid: 0.0..2.2 by 0.1
        # Once the dense model is cached, info reports its accuracy from the cache.
        assert run(["pretrain", "--config", TINY], env).returncode == 0
        proc = run(["info", "--config", TINY], env)
        assert proc.returncode == 0, proc.stderr
        assert "cached:" in proc.stdout and "validation" in proc.stdout and "not trained yet" not in proc.stdout

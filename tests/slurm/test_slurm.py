"""The Slurm back ends against a real single-node Slurm 22.05 cluster (tests/slurm/cluster.py):
`prunegym bench --backend slurm` on configs/bench/tiny.json gives the local back end's results,
cached cells are not resubmitted, and a 2-server fleet from scripts/slurm-serve serves a
RemoteVectorEnv and `prunegym train --remote FILE` over its endpoints file. Run as root (CI
does); elsewhere the tests are skipped with the reason."""
import csv
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = pathlib.Path(os.environ.get("PRUNEGYM_SOURCE_DIR", HERE.parents[1]))
CLI = os.environ.get("PRUNEGYM_CLI", str(ROOT / "build/bin/prunegym"))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "python"))

import cluster  # noqa: E402

REASON = cluster.why_not_available()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


@pytest.fixture(scope="module")
def slurm():
    with cluster.SingleNodeCluster() as c:
        yield c


def run(argv, env, timeout=600, check=True):
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{argv} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def figures(out):
    """results.csv without the columns that measure time."""
    with open(out / "results.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def test_bench_on_slurm_matches_the_local_back_end(slurm, tmp_path):
    env = dict(slurm.env, PRUNEGYM_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    grid = str(ROOT / "configs/bench/tiny.json")
    # One LibTorch thread per run on both back ends (local: cores / jobs; Slurm: cpus-per-task 1).
    run([CLI, "bench", "--grid", grid, "--out", str(tmp_path / "local"), "--jobs", str(os.cpu_count())], env)
    p = run([CLI, "bench", "--grid", grid, "--out", str(tmp_path / "slurm"), "--backend", "slurm", "--poll", "1",
             "--slurm-opt", "time=00:10:00"], env)
    assert "submitted Slurm job" in p.stderr and "array of 4 cells (0-3)" in p.stderr, p.stderr
    local, remote = figures(tmp_path / "local"), figures(tmp_path / "slurm")
    assert len(local) == 4 and remote == local
    md = (tmp_path / "slurm/results.md").read_text()
    assert "| dense |" in md.replace("*", "") and "on Slurm" in md
    jobs = json.loads((tmp_path / "slurm/slurm/jobs.json").read_text())["jobs"]
    assert len(jobs) == 1 and jobs[0]["cells"] == [0, 1, 2, 3]
    assert list((tmp_path / "slurm/slurm").glob(f"{jobs[0]['job']}_*.out")), "no Slurm task logs"
    # Finished cells are cached: a rerun submits nothing and renders the same table.
    p = run([CLI, "bench", "--grid", grid, "--out", str(tmp_path / "slurm"), "--backend", "slurm", "--no-wait"], env)
    assert "nothing to submit" in p.stdout
    assert len(json.loads((tmp_path / "slurm/slurm/jobs.json").read_text())["jobs"]) == 1
    # The local back end renders the same tables from the Slurm runs, running nothing.
    (tmp_path / "slurm/results.csv").unlink()
    p = run([CLI, "bench", "--grid", grid, "--out", str(tmp_path / "slurm")], env)
    assert "0 to run" in p.stderr and figures(tmp_path / "slurm") == local


def test_failed_cells_are_reported_and_resubmitted(slurm, tmp_path):
    env = dict(slurm.env, PRUNEGYM_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"base": str(ROOT / "configs/tiny-synthetic.json"), "agent": "q", "seeds": 1,
                                "episodes": 2, "variants": [{"name": "only", "patch": {}}]}))
    out = tmp_path / "out"
    # A node with a broken environment: the task's prunegym cannot load its libraries.
    broken = tmp_path / "broken-libs"
    broken.mkdir()
    (broken / "libprunegym_experiments.so").write_bytes(b"")
    p = run([CLI, "bench", "--grid", str(grid), "--out", str(out), "--backend", "slurm", "--poll", "1",
             "--slurm-opt", f"export=ALL,LD_LIBRARY_PATH={broken}"], env, check=False)
    assert p.returncode == 1 and "1 runs failed" in p.stderr and "log.txt" in p.stderr, p.stderr
    p = run([CLI, "bench", "--grid", str(grid), "--out", str(out), "--backend", "slurm", "--poll", "1"], env)
    assert "array of 1 cells" in p.stderr and len(figures(out)) == 1


def test_a_fleet_serves_vector_envs_and_train_over_its_endpoints_file(slurm, tmp_path):
    import zmq

    from prunegym_client import RemoteVectorEnv, read_endpoints_file

    public, secret = zmq.curve_keypair()
    key = tmp_path / "server.key"
    key.write_bytes(secret + b"\n")
    key.chmod(0o600)
    fleet = tmp_path / "fleet.txt"
    server = subprocess.Popen([str(ROOT / "scripts/slurm-serve"), "--servers", "2", "--endpoints", str(fleet),
                               "--curve-secret-file", str(key), "--prunegym", CLI, "--start-timeout", "120", "--",
                               "--workers", "1", "--quiet", "--data-root", str(tmp_path)],
                              env=dict(slurm.env, PRUNEGYM_CACHE=str(tmp_path / "cache")), start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 150
        while not fleet.exists() and time.time() < deadline and server.poll() is None:
            time.sleep(0.2)
        assert fleet.exists(), "no endpoints file: " + (server.stdout.read() if server.poll() is not None else "")
        servers = read_endpoints_file(str(fleet))
        assert len(servers) == 2 and len({e for e, _ in servers}) == 2
        assert all(k == public.decode() for _, k in servers)
        venv = RemoteVectorEnv.from_endpoints_file(str(fleet), kind="toy", toy={"steps": 3, "actions": 4})
        try:
            obs, _ = venv.reset(seed=0)
            assert obs.shape == (2, 2)
            for _ in range(3):
                obs, reward, terminated, truncated, _ = venv.step([1, 1])
            assert terminated.all()
        finally:
            venv.close()
        out = tmp_path / "train"
        p = run([CLI, "train", "--config", str(ROOT / "configs/tiny-synthetic.json"), "--agent", "q", "--episodes", "2",
                 "--seed", "1", "--remote", str(fleet), "--out", str(out)], dict(slurm.env, OMP_NUM_THREADS="1"))
        assert json.loads((out / "summary.json").read_text())["sparsity"] >= 0
        assert servers[1][0] in p.stderr, "seed 1 trains on the fleet's second server"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    assert not fleet.exists(), "slurm-serve leaves no stale endpoints file"

"""The Python client against a real `prunegym serve` process."""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
import zmq

ROOT = pathlib.Path(os.environ.get("PRUNEGYM_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
CLI = os.environ.get("PRUNEGYM_CLI", str(ROOT / "build" / "bin" / "prunegym"))
sys.path.insert(0, str(ROOT / "python"))

from prunegym_client import RemoteError, RemotePruneEnv, RemoteVectorEnv, load_config  # noqa: E402

TINY = load_config(str(ROOT / "configs" / "tiny-synthetic.json"))


class Server:
    def __init__(self, *args):
        self.cache = tempfile.TemporaryDirectory()
        env = dict(os.environ, PRUNEGYM_CACHE=self.cache.name, OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen([CLI, "serve", "--bind", "tcp://127.0.0.1:*", "--quiet", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        assert "listening on" in line, self.proc.stderr.read()
        self.endpoint = line.split("listening on")[1].strip()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.cache.cleanup()
        return self.proc.returncode


@pytest.fixture()
def server():
    s = Server()
    yield s
    s.stop()


def test_a_full_pruning_episode_through_the_python_client(server):
    with RemotePruneEnv(server.endpoint, TINY) as env:
        assert env.action_space.n == 23
        assert env.make_info["layers"] == ["fc1.weight", "fc2.weight", "fc3.weight"]
        obs, info = env.reset(seed=3)
        assert obs.dtype == np.float32 and obs.shape == (3,)
        assert env.observation_space.contains(obs)
        total, done, steps = 0.0, False, 0
        while not done:
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            assert env.observation_space.contains(obs)
            total += reward
            steps += 1
            done = terminated or truncated
        assert steps == 3 and terminated and not truncated
        assert 0 <= info["sparsity"] <= 1 and info["layer"] == "fc3.weight"
        with pytest.raises(RemoteError) as e:
            env.step(0)
        assert e.value.code == "episode_over"


def test_same_seed_same_actions_same_trajectory(server):
    with RemotePruneEnv(server.endpoint, TINY) as a, RemotePruneEnv(server.endpoint, TINY) as b:
        for env in (a, b):
            env.reset(seed=11)
        for action in (4, 15, 9):
            ra, rb = a.step(action), b.step(action)
            assert np.array_equal(ra[0], rb[0]) and ra[1] == rb[1]


def test_json_and_f32_encodings_give_identical_observations(server):
    with RemotePruneEnv(server.endpoint, TINY, encoding="json") as a, \
            RemotePruneEnv(server.endpoint, TINY, encoding="f32") as b:
        oa, _ = a.reset(seed=2)
        ob, _ = b.reset(seed=2)
        assert oa.dtype == ob.dtype == np.float32 and np.array_equal(oa, ob)
        for action in (7, 3):
            sa, sb = a.step(action), b.step(action)
            assert np.array_equal(sa[0], sb[0])
    with pytest.raises(ValueError, match="encoding"):
        RemotePruneEnv(server.endpoint, TINY, encoding="msgpack")


def test_errors_have_stable_codes(server):
    with RemotePruneEnv(server.endpoint, kind="toy") as env:
        env.reset()
        with pytest.raises(RemoteError) as e:
            env.step(99)
        assert e.value.code == "bad_argument" and "0..4" in e.value.message
        env.step(1)  # the rejected action left the episode usable
        with pytest.raises(RemoteError) as e:
            env.snapshot()
        assert e.value.code == "bad_argument"
    bad = dict(TINY, env=dict(TINY.get("env", {}), rewrad=1))
    with pytest.raises(RemoteError) as e:
        RemotePruneEnv(server.endpoint, bad)
    assert e.value.code == "bad_argument" and "env.rewrad" in e.value.message
    # Raw garbage: still a reply, never a crash.
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(server.endpoint)
    for payload, code in ((b"\xff\xfe", "bad_json"), (b'{"cmd": "fly"}', "unknown_command"),
                          (b'{"cmd": "reset", "session": "x"}', "no_session"), (b" " * 2_000_000, "limit")):
        sock.send(payload)
        assert sock.poll(10000)
        assert json.loads(sock.recv())["error"]["code"] == code
    sock.close()
    assert server.proc.poll() is None


def test_an_oversized_request_raises_limit_instead_of_waiting_for_its_timeout(server):
    padded = dict(TINY, padding="x" * 3_000_000)  # 3 MB: above --max-message, below the hard cap
    t0 = time.monotonic()
    with pytest.raises(RemoteError) as e:
        RemotePruneEnv(server.endpoint, padded, make_timeout=600)
    assert e.value.code == "limit" and "--max-message" in e.value.message
    assert time.monotonic() - t0 < 60  # the reply carried the id: no wait for the 600 s timeout
    with RemotePruneEnv(server.endpoint, kind="toy") as env:  # the server keeps serving
        env.reset(seed=0)


def test_a_killed_server_gives_timeout_error_not_a_hang():
    s = Server()
    env = RemotePruneEnv(s.endpoint, kind="toy", timeout=0.5)
    env.reset()
    s.stop(signal.SIGKILL)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        env.step(1)
    assert time.monotonic() - t0 < 5
    env.close()  # does not hang either


def test_sigterm_shuts_the_server_down_cleanly():
    s = Server()
    with RemotePruneEnv(s.endpoint, kind="toy") as env:
        env.reset()
    assert s.stop(signal.SIGTERM) == 0


def test_sigterm_during_long_work_stops_the_server_at_once():
    s = Server()
    slow = json.loads(json.dumps(TINY))
    slow.setdefault("data", {}).setdefault("synthetic", {})["train"] = 100000
    slow.setdefault("network", {}).setdefault("pretrain", {})["epochs"] = 40  # minutes of pretraining
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(s.endpoint)
    sock.send(json.dumps({"cmd": "make", "config": slow, "id": 1}).encode())
    time.sleep(1.0)
    t0 = time.monotonic()
    assert s.stop(signal.SIGTERM) == 0
    took = time.monotonic() - t0
    assert took < 10, f"SIGTERM took {took:.1f} s"  # without cancellation: the whole pretraining
    assert sock.poll(5000)
    reply = json.loads(sock.recv())
    assert reply["id"] == 1 and reply["error"]["code"] == "cancelled"
    sock.close()


def test_vector_env_steps_several_sessions_and_auto_resets(server):
    with RemoteVectorEnv([server.endpoint] * 3, kind="toy", toy={"steps": 2, "actions": 3}) as venv:
        obs, infos = venv.reset(seed=0)
        assert obs.shape == (3, 2)
        obs, rewards, terminated, truncated, infos = venv.step([1, 1, 0])
        assert list(rewards) == [1.0, 1.0, 0.0]  # the best first action is 1
        obs, rewards, terminated, truncated, infos = venv.step([0, 0, 0])
        assert terminated.all() and infos["_step"].all()
        obs, rewards, terminated, truncated, infos = venv.step([0, 0, 0])
        assert np.all(obs == 0) and not terminated.any()  # auto-reset on the next step (Gymnasium 1.x)


def test_gymnasium_free_spaces_work():
    from prunegym_client.spaces import space_from_json
    d = space_from_json({"type": "Discrete", "n": 4, "values": [0, 0.5, 1, 1.5]}, use_gymnasium=False)
    assert d.contains(3) and not d.contains(4) and d.values[1] == 0.5
    b = space_from_json({"type": "Box", "low": [0, 0], "high": [1, 2], "shape": [2]}, use_gymnasium=False)
    assert b.contains(b.sample()) and not b.contains(np.array([0, 3], np.float32))


@pytest.mark.parametrize("script, args", [("random_agent.py", []), ("q_learning_agent.py", ["20"])])
def test_python_examples_run_against_the_server(server, script, args):
    config = str(ROOT / "configs" / "tiny-synthetic.json")
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "python" / script), server.endpoint, config, *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "sparsity" in proc.stdout


def test_train_runs_against_a_remote_server(server, tmp_path):
    env = dict(os.environ, PRUNEGYM_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="2")
    proc = subprocess.run([CLI, "train", "--config", str(ROOT / "configs" / "tiny-synthetic.json"), "--agent", "dqn",
                           "--episodes", "4", "--remote", server.endpoint, "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "training against" in proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["episodes"] == 4 and 0 < summary["sparsity"] < 1


def test_curve_allow_list_from_python():
    server_public, server_secret = zmq.curve_keypair()
    client_public, client_secret = zmq.curve_keypair()
    s = Server("--curve-secret", server_secret.decode(), "--curve-client", client_public.decode())
    try:
        with RemotePruneEnv(s.endpoint, kind="toy", curve_server_key=server_public,
                            curve_keypair=(client_public, client_secret)) as env:
            assert env.reset()[0].shape == (2,)
        with pytest.raises(TimeoutError):
            RemotePruneEnv(s.endpoint, kind="toy", timeout=0.5, curve_server_key=server_public)
    finally:
        s.stop()


def test_curve_keys_from_files_and_the_environment(tmp_path):
    server_public, server_secret = zmq.curve_keypair()
    client_public, client_secret = zmq.curve_keypair()
    secret_file, clients_file = tmp_path / "server.key", tmp_path / "clients.txt"
    secret_file.write_text(server_secret.decode() + "\n")
    clients_file.write_text("# lab machines\n" + client_public.decode() + "\n")
    # A secret other users can read is refused, with the fix in the message.
    secret_file.chmod(0o644)
    proc = subprocess.run([CLI, "serve", "--bind", "tcp://127.0.0.1:*", "--curve-secret-file", str(secret_file)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "chmod 600" in proc.stderr
    secret_file.chmod(0o600)
    for args, env in ((("--curve-secret-file", str(secret_file)), {}), ((), {"PRUNEGYM_CURVE_SECRET": server_secret.decode()})):
        os.environ.update(env)
        try:
            s = Server(*args, "--curve-clients-file", str(clients_file))
        finally:
            for k in env:
                del os.environ[k]
        try:
            assert server_secret.decode() not in " ".join(s.proc.args)  # never on the command line
            with RemotePruneEnv(s.endpoint, kind="toy", curve_server_key=server_public,
                                curve_keypair=(client_public, client_secret)) as remote:
                assert remote.reset()[0].shape == (2,)
            with pytest.raises(TimeoutError):  # a client not on the list
                RemotePruneEnv(s.endpoint, kind="toy", timeout=0.5, curve_server_key=server_public)
        finally:
            s.stop()


def test_a_gcn_episode_on_a_graph_through_the_bridge(server):
    config = load_config(str(ROOT / "configs" / "tiny-graph.json"))
    with RemotePruneEnv(server.endpoint, config) as env:
        assert env.make_info["layers"] == ["gcn1.weight", "gcn2.weight", "fc1.weight"]
        obs, info = env.reset(seed=1)
        assert obs.shape == (3,) and obs[1] > 0.6  # dense validation accuracy, 4 classes
        done, layers = False, []
        while not done:
            obs, reward, terminated, truncated, info = env.step(12)  # alpha 1.2
            layers.append(info["layer"])
            done = terminated or truncated
        assert layers == ["gcn1.weight", "gcn2.weight", "fc1.weight"]
        assert info["sparsity"] > 0.6 and info["accuracy"] > 0.4


def test_pip_installs_the_client(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "python" / "prunegym_client", src / "prunegym_client",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / "python" / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                           "--target", str(tmp_path / "site"), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    check = subprocess.run([sys.executable, "-c", "import prunegym_client as p; print(p.__file__)"], capture_output=True,
                           text=True, env=dict(os.environ, PYTHONPATH=str(tmp_path / "site")), cwd=str(tmp_path))
    assert check.returncode == 0 and check.stdout.startswith(str(tmp_path / "site")), check.stderr


def test_endpoints_files_from_serve_drive_vector_envs_and_train(tmp_path):
    """`serve --endpoint-file` writes one line of an endpoints file (with the CURVE public key);
    RemoteVectorEnv.from_endpoints_file and `train --remote FILE` use the fleet it describes."""
    from prunegym_client import read_endpoints_file

    public, secret = zmq.curve_keypair()
    key = tmp_path / "server.key"
    key.write_text(secret.decode() + "\n")
    key.chmod(0o600)
    servers = [Server("--curve-secret-file", str(key), "--endpoint-file", str(tmp_path / f"s{i}.txt")) for i in range(2)]
    try:
        lines = [(tmp_path / f"s{i}.txt").read_text().strip() for i in range(2)]
        assert lines[0] == f"{servers[0].endpoint} curve={public.decode()}"
        fleet = tmp_path / "fleet.txt"
        fleet.write_text("# two local servers\n\n" + "\n".join(lines) + "\n")
        assert read_endpoints_file(str(fleet)) == [(s.endpoint, public.decode()) for s in servers]
        with RemoteVectorEnv.from_endpoints_file(str(fleet), kind="toy") as venv:
            assert venv.reset(seed=0)[0].shape == (2, 2)
        env = dict(os.environ, PRUNEGYM_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
        proc = subprocess.run([CLI, "train", "--config", str(ROOT / "configs" / "tiny-synthetic.json"), "--agent", "q",
                               "--episodes", "2", "--seed", "3", "--remote", str(fleet), "--out", str(tmp_path / "run")],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert f"training against {servers[1].endpoint} (CURVE)" in proc.stderr  # seed 3 -> line 3 mod 2
        # Bad files name the file, the line and the fix.
        fleet.write_text("tcp://a:1\nnode7:5555\n")
        with pytest.raises(ValueError, match=r"fleet.txt:2: 'node7:5555' is not an endpoint"):
            read_endpoints_file(str(fleet))
        proc = subprocess.run([CLI, "train", "--config", str(ROOT / "configs" / "tiny-synthetic.json"), "--agent", "q", "--remote",
                               str(fleet), "--out", str(tmp_path / "bad")], capture_output=True, text=True, env=env)
        assert proc.returncode != 0 and "fleet.txt:2: 'node7:5555' is not an endpoint" in proc.stderr
    finally:
        for s in servers:
            s.stop()
    assert not (tmp_path / "s0.txt").exists(), "serve removes its endpoint file on exit"

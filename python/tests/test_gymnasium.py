"""Gymnasium conformance of the Python client: Gymnasium's own env checker, RemoteVectorEnv step
for step against gymnasium.vector.SyncVectorEnv over the same sessions and seeds, and the client on
numpy alone (no gymnasium importable)."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import GYMNASIUM_PATH
from test_client import ROOT, TINY, Server

pytestmark = pytest.mark.skipif(GYMNASIUM_PATH is None, reason="Gymnasium's source is not beside the repository "
                                                               "(../shared/third_party or PRUNEGYM_GYMNASIUM_PATH)")
TOY = {"steps": 3, "actions": 3}


@pytest.fixture(scope="module")
def server():
    s = Server("--workers", "2")
    yield s
    s.stop()


def test_the_client_classes_are_gymnasium_classes():
    import gymnasium

    import prunegym_client
    from prunegym_client import RemotePruneEnv, RemoteVectorEnv

    assert prunegym_client.HAVE_GYMNASIUM
    assert issubclass(RemotePruneEnv, gymnasium.Env)
    assert issubclass(RemoteVectorEnv, gymnasium.vector.VectorEnv)
    assert "prunegym/RemotePrune-v0" in gymnasium.registry


@pytest.mark.parametrize("kind,kwargs", [("toy", {"toy": TOY}), ("prune", {"config": TINY})])
def test_check_env_passes_with_no_warnings(server, kind, kwargs):
    import gymnasium
    from gymnasium.utils.env_checker import check_env

    env = gymnasium.make("prunegym/RemotePrune-v0", endpoint=server.endpoint, kind=kind, **kwargs)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env.unwrapped)
        assert [str(w.message) for w in caught] == []
    finally:
        env.close()


def test_timings_leave_info_unless_asked_for(server):
    from prunegym_client import RemotePruneEnv

    with RemotePruneEnv(server.endpoint, TINY) as env:
        env.reset(seed=1)
        *_, info = env.step(0)
        assert "retrain_ms" not in info and "accuracy" in info
        assert set(env.last_timings) == {"prune_ms", "retrain_ms", "eval_ms"}
    with RemotePruneEnv(server.endpoint, TINY, timings_in_info=True) as env:
        env.reset(seed=1)
        assert "retrain_ms" in env.step(0)[-1]


def rollout(venv, seed, steps, rng_seed=0):
    """Seeded random actions; returns every step's (obs, reward, terminated, truncated, infos)."""
    rng = np.random.default_rng(rng_seed)
    out = [venv.reset(seed=seed)]
    n = venv.single_action_space.n
    for _ in range(steps):
        out.append(venv.step(rng.integers(n, size=venv.num_envs)))
    return out


@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
@pytest.mark.parametrize("kind,kwargs,steps", [("toy", {"toy": TOY}, 10), ("prune", {"config": TINY}, 12)])
def test_vector_env_matches_sync_vector_env(server, mode, kind, kwargs, steps):
    from gymnasium.utils.env_checker import data_equivalence
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    from prunegym_client import RemotePruneEnv, RemoteVectorEnv

    mode = AutoresetMode(mode)
    ours = RemoteVectorEnv([server.endpoint] * 3, kind=kind, autoreset_mode=mode, **kwargs)
    sync = SyncVectorEnv([lambda: RemotePruneEnv(server.endpoint, kind=kind, **kwargs) for _ in range(3)],
                         autoreset_mode=mode)
    try:
        assert ours.metadata["autoreset_mode"] == mode
        assert ours.action_space == sync.action_space and ours.observation_space == sync.observation_space
        a, b = rollout(ours, 5, steps), rollout(sync, 5, steps)
        ended = sum(int(np.sum(r[2] | r[3])) for r in a[1:])
        assert ended >= 3, "the rollout must cross episode ends"
        for t, (x, y) in enumerate(zip(a, b)):
            assert data_equivalence(x, y), f"step {t} differs:\n{x}\n{y}"
        if mode == AutoresetMode.SAME_STEP:
            assert any("final_obs" in r[4] for r in a[1:])
    finally:
        ours.close()
        sync.close()


def test_next_step_autoreset_ignores_the_action_and_returns_the_reset(server):
    from prunegym_client import RemoteVectorEnv

    with RemoteVectorEnv([server.endpoint] * 2, kind="toy", toy={"steps": 2, "actions": 3}) as venv:
        obs, infos = venv.reset(seed=0)
        assert obs.shape == (2, 2) and infos["_step"].all()
        _, rewards, *_ = venv.step([1, 0])
        assert list(rewards) == [1.0, 0.0]  # the best first action is 1
        last, _, terminated, _, _ = venv.step([0, 0])
        assert terminated.all() and not np.all(last == 0)  # the step that ends returns the last observation
        obs, rewards, terminated, truncated, _ = venv.step([2, 2])  # ignored: this step resets
        assert np.all(obs == 0) and not rewards.any() and not (terminated | truncated).any()


def test_the_client_works_on_numpy_alone(server):
    script = f"""
import sys
sys.path.insert(0, {str(ROOT / 'python')!r})
import numpy as np
import prunegym_client
from prunegym_client import RemotePruneEnv, RemoteVectorEnv
assert not prunegym_client.HAVE_GYMNASIUM
with RemotePruneEnv({server.endpoint!r}, kind="toy", toy={{"steps": 2, "actions": 3}}) as env:
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.np_random is not None
    env.step(env.action_space.sample())
with RemoteVectorEnv([{server.endpoint!r}] * 2, kind="toy", toy={{"steps": 2, "actions": 3}}) as venv:
    venv.reset(seed=0)
    venv.step(venv.action_space.sample())
    _, _, term, _, infos = venv.step([0, 0])
    assert term.all() and infos["_step"].all()
    obs, rew, term, _, _ = venv.step([0, 0])
    assert np.all(obs == 0) and not term.any()
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env,
                          cwd=str(ROOT))
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


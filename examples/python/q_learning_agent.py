#!/usr/bin/python3
"""Tabular Q-learning (seed 000's update, eq6: Q = (1-a)Q + a(r + g max Q')) in Python, training
against the C++ environment over ZeroMQ. Observations are discretised into bins.

    build/bin/prunegym serve &
    /usr/bin/python3 examples/python/q_learning_agent.py [tcp://127.0.0.1:5555] [config] [episodes]
"""

import collections
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "python"))
from prunegym_client import RemotePruneEnv  # noqa: E402

endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
root = pathlib.Path(__file__).resolve().parents[2]
config = sys.argv[2] if len(sys.argv) > 2 else str(root / "configs/tiny-synthetic.json")
episodes = int(sys.argv[3]) if len(sys.argv) > 3 else 60
alpha, gamma, bins = 0.9, 0.6, 10
rng = np.random.default_rng(0)

with RemotePruneEnv(endpoint, config) as env:
    low, high = env.observation_space.low, env.observation_space.high
    n = env.action_space.n
    q = collections.defaultdict(lambda: np.zeros(n))

    def key(obs):
        cells = np.floor((obs - low) / np.maximum(high - low, 1e-9) * bins).astype(int)
        return tuple(np.clip(cells, 0, bins - 1))

    for episode in range(episodes):
        epsilon = 1.0 - 0.9 * episode / max(episodes - 1, 1)  # 1.0 -> 0.1 over the run
        obs, _ = env.reset(seed=episode)
        done, total = False, 0.0
        while not done:
            s = key(obs)
            a = int(rng.integers(n)) if rng.random() < epsilon else int(rng.choice(np.flatnonzero(q[s] == q[s].max())))
            obs, reward, terminated, truncated, info = env.step(a)
            best_next = 0.0 if terminated else q[key(obs)].max()
            q[s][a] = (1 - alpha) * q[s][a] + alpha * (reward + gamma * best_next)
            total += reward
            done = terminated or truncated
        if (episode + 1) % 10 == 0:
            print(f"episode {episode + 1}: return {total:.3f}, sparsity {info['sparsity']:.1%}, "
                  f"accuracy {info['accuracy']:.1%}, epsilon {epsilon:.2f}")

    obs, _ = env.reset(seed=10_000)
    done, alphas = False, []
    while not done:
        a = int(np.argmax(q[key(obs)]))
        obs, reward, terminated, truncated, info = env.step(a)
        alphas.append(env.action_space.values[a] if hasattr(env.action_space, "values") else a)
        done = terminated or truncated
    print(f"greedy alphas {alphas}: sparsity {info['sparsity']:.1%}, accuracy {info['accuracy']:.1%}")

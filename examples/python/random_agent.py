#!/usr/bin/python3
"""A random agent driving the C++ pruning environment over ZeroMQ.

    build/bin/prunegym serve &
    /usr/bin/python3 examples/python/random_agent.py [tcp://127.0.0.1:5555] [configs/tiny-synthetic.json]
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "python"))
from prunegym_client import RemotePruneEnv  # noqa: E402

endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
config = sys.argv[2] if len(sys.argv) > 2 else str(pathlib.Path(__file__).resolve().parents[2] / "configs/tiny-synthetic.json")

with RemotePruneEnv(endpoint, config) as env:
    env.action_space.seed(0)
    for episode in range(5):
        obs, info = env.reset(seed=episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            total += reward
            done = terminated or truncated
        print(f"episode {episode}: return {total:.3f}, sparsity {info['sparsity']:.1%}, accuracy {info['accuracy']:.1%}")

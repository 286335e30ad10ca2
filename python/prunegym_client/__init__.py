"""Python client for the prunegym ZeroMQ bridge (`prunegym serve`).

    from prunegym_client import RemotePruneEnv
    env = RemotePruneEnv("tcp://127.0.0.1:5555", config)   # config: the JSON config as a dict
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

Gymnasium's API; Gymnasium's space classes when gymnasium is importable, compatible small
Discrete/Box classes otherwise. Every receive has a timeout and raises TimeoutError.
Needs Debian's python3-zmq and python3-numpy (run with /usr/bin/python3).
"""

from .client import PROTOCOL_VERSION, RemoteError, RemotePruneEnv, load_config
from .spaces import Box, Discrete, space_from_json
from .vector import RemoteVectorEnv

__all__ = ["RemotePruneEnv", "RemoteVectorEnv", "RemoteError", "Box", "Discrete", "space_from_json", "load_config",
           "PROTOCOL_VERSION"]

"""Python client for the prunegym ZeroMQ bridge (`prunegym serve`).

    from prunegym_client import RemotePruneEnv
    env = RemotePruneEnv("tcp://127.0.0.1:5555", config)   # config: the JSON config as a dict
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

Gymnasium's API. When gymnasium is importable, RemotePruneEnv is a gymnasium.Env (registered as
"prunegym/RemotePrune-v0" for gymnasium.make), RemoteVectorEnv a gymnasium.vector.VectorEnv with
Gymnasium 1.x semantics, and spaces are Gymnasium's; on numpy alone the same classes behave the
same with small Discrete/Box stand-ins. Every receive has a timeout and raises TimeoutError.
Needs Debian's python3-zmq and python3-numpy (run with /usr/bin/python3).
"""

from ._compat import HAVE_GYMNASIUM, AutoresetMode
from .client import PROTOCOL_VERSION, RemoteError, RemotePruneEnv, load_config, read_endpoints_file
from .spaces import Box, Discrete, space_from_json
from .vector import RemoteVectorEnv

__all__ = ["RemotePruneEnv", "RemoteVectorEnv", "RemoteError", "Box", "Discrete", "space_from_json", "load_config",
           "PROTOCOL_VERSION", "HAVE_GYMNASIUM", "AutoresetMode", "ENV_ID", "read_endpoints_file"]

ENV_ID = "prunegym/RemotePrune-v0"
if HAVE_GYMNASIUM:  # gymnasium.make(ENV_ID, endpoint=..., config=...) gives an env with a spec
    import gymnasium as _gymnasium

    if ENV_ID not in _gymnasium.registry:
        _gymnasium.register(id=ENV_ID, entry_point="prunegym_client.client:RemotePruneEnv")

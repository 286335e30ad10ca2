"""Gymnasium's base classes when gymnasium is importable; small stand-ins on numpy alone.

With gymnasium, RemotePruneEnv is a gymnasium.Env and RemoteVectorEnv a
gymnasium.vector.VectorEnv, so Gymnasium's tools (check_env, wrappers, make) accept them. Without
it the same classes work with the same semantics.
"""

import enum

import numpy as np

try:  # pragma: no cover - depends on the machine
    import gymnasium
    from gymnasium.vector import AutoresetMode, VectorEnv

    Env = gymnasium.Env
    HAVE_GYMNASIUM = True
except ImportError:  # pragma: no cover
    gymnasium = None
    HAVE_GYMNASIUM = False

    class AutoresetMode(enum.Enum):
        """When a vector env resets a finished sub-environment (Gymnasium 1.x names)."""

        NEXT_STEP = "NextStep"
        SAME_STEP = "SameStep"
        DISABLED = "Disabled"

    class _Seeded:
        _np_random = None

        @property
        def np_random(self):
            if self._np_random is None:
                self._np_random = np.random.default_rng()
            return self._np_random

        @property
        def unwrapped(self):
            return self

    class Env(_Seeded):
        """The part of gymnasium.Env that RemotePruneEnv relies on."""

        metadata = {"render_modes": []}
        render_mode = None
        spec = None

        def reset(self, *, seed=None, options=None):
            if seed is not None:
                self._np_random = np.random.default_rng(seed)

        def close(self):
            pass

    class VectorEnv(_Seeded):
        """The part of gymnasium.vector.VectorEnv that RemoteVectorEnv relies on."""

        metadata = {}
        spec = None
        render_mode = None
        closed = False

        def reset(self, *, seed=None, options=None):
            if seed is not None:
                self._np_random = np.random.default_rng(seed)

        def close(self, **kwargs):
            if not self.closed:
                self.close_extras(**kwargs)
            self.closed = True

        def close_extras(self, **kwargs):
            pass


def add_info(vector_infos, env_info, env_num, num_envs):
    """Gymnasium 1.x's vector info layout: each key an array over sub-envs plus a `_key` mask
    saying which sub-envs set it; dicts recurse; `final_obs` stays an object array."""
    for key, value in env_info.items():
        if key == "final_obs":
            array = vector_infos.get("final_obs")
            if array is None:
                array = np.full(num_envs, fill_value=None, dtype=object)
            array[env_num] = value
        elif isinstance(value, dict):
            array = add_info(vector_infos.get(key, {}), value, env_num, num_envs)
        else:
            if key not in vector_infos:
                if type(value) in (int, float, bool) or issubclass(type(value), np.number):
                    array = np.zeros(num_envs, dtype=type(value))
                elif isinstance(value, np.ndarray):
                    array = np.zeros((num_envs, *value.shape), dtype=value.dtype)
                else:
                    array = np.full(num_envs, fill_value=None, dtype=object)
            else:
                array = vector_infos[key]
            array[env_num] = value
        mask = vector_infos.get(f"_{key}", np.zeros(num_envs, dtype=np.bool_))
        mask[env_num] = True
        vector_infos[key], vector_infos[f"_{key}"] = array, mask
    return vector_infos

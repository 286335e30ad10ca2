"""Action and observation spaces: Gymnasium's when available, small compatible classes otherwise."""

import numpy as np

try:  # pragma: no cover - depends on the machine
    from gymnasium.spaces import Box as _GymBox
    from gymnasium.spaces import Discrete as _GymDiscrete
except ImportError:  # pragma: no cover
    _GymBox = _GymDiscrete = None


class Discrete:
    """n actions 0..n-1; `values[i]` is what index i stands for (an alpha, a sparsity)."""

    def __init__(self, n, values=None, seed=None):
        self.n = int(n)
        self.values = list(values) if values is not None else list(range(self.n))
        self.shape = ()
        self.dtype = np.int64
        self._rng = np.random.default_rng(seed)

    def seed(self, seed=None):
        self._rng = np.random.default_rng(seed)

    def sample(self):
        return int(self._rng.integers(self.n))

    def contains(self, x):
        try:
            return float(x).is_integer() and 0 <= int(x) < self.n
        except (TypeError, ValueError):
            return False

    __contains__ = contains

    def __repr__(self):
        return f"Discrete({self.n})"


class Box:
    """A float32 box with per-dimension bounds."""

    def __init__(self, low, high, shape=None, dtype=np.float32, seed=None):
        self.low = np.asarray(low, dtype=np.float32)
        self.high = np.asarray(high, dtype=np.float32)
        self.shape = tuple(shape) if shape is not None else self.low.shape
        self.dtype = np.dtype(dtype)
        self._rng = np.random.default_rng(seed)

    def seed(self, seed=None):
        self._rng = np.random.default_rng(seed)

    def sample(self):
        return self._rng.uniform(self.low, self.high).astype(self.dtype)

    def contains(self, x):
        x = np.asarray(x, dtype=np.float32)
        return x.shape == self.shape and bool(np.all(x >= self.low)) and bool(np.all(x <= self.high))

    __contains__ = contains

    def __repr__(self):
        return f"Box({self.shape})"


class MultiDiscrete:
    """One Discrete(n) per sub-environment: the batched action space of a vector env."""

    def __init__(self, nvec, seed=None):
        self.nvec = np.asarray(nvec, dtype=np.int64)
        self.shape = self.nvec.shape
        self.dtype = np.int64
        self._rng = np.random.default_rng(seed)

    def seed(self, seed=None):
        self._rng = np.random.default_rng(seed)

    def sample(self):
        return self._rng.integers(self.nvec)

    def contains(self, x):
        x = np.asarray(x)
        return x.shape == self.shape and bool(np.all((x >= 0) & (x < self.nvec)))

    __contains__ = contains

    def __repr__(self):
        return f"MultiDiscrete({self.nvec.tolist()})"


def batch_space(space, n):
    """The space of n stacked samples of `space`: Gymnasium's batch_space for Gymnasium spaces."""
    if not isinstance(space, (Discrete, Box)):
        from gymnasium.vector.utils import batch_space as gym_batch_space

        return gym_batch_space(space, n)
    if isinstance(space, Discrete):
        return MultiDiscrete([space.n] * n)
    return Box(np.tile(space.low, (n,) + (1,) * space.low.ndim), np.tile(space.high, (n,) + (1,) * space.high.ndim))


def space_from_json(j, use_gymnasium=True):
    """Builds a space from the server's description ({"type": "Discrete"|"Box", ...})."""
    kind = j.get("type")
    if kind == "Discrete":
        if use_gymnasium and _GymDiscrete is not None:
            space = _GymDiscrete(int(j["n"]))
            space.values = list(j.get("values", range(int(j["n"]))))
            return space
        return Discrete(j["n"], j.get("values"))
    if kind == "Box":
        if use_gymnasium and _GymBox is not None:
            return _GymBox(np.asarray(j["low"], np.float32), np.asarray(j["high"], np.float32), dtype=np.float32)
        return Box(j["low"], j["high"], j.get("shape"))
    raise ValueError(f"unknown space type {kind!r}")

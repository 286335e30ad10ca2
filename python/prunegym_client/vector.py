"""RemoteVectorEnv: one learner drives N environment sessions (one per endpoint), stepping all of
them in parallel, with Gymnasium 1.x vector-env semantics."""

import numpy as np

from ._compat import AutoresetMode, VectorEnv, add_info
from .client import RemotePruneEnv, read_endpoints_file
from .spaces import batch_space


class RemoteVectorEnv(VectorEnv):
    """N RemotePruneEnv sessions (endpoints may repeat) stepped in parallel: every request is sent
    before any reply is awaited, so the servers work concurrently. An endpoint may be a pair
    (endpoint, curve_server_key); from_endpoints_file(path) takes a fleet's endpoints file. A gymnasium.vector.VectorEnv
    when gymnasium is importable; the same behaviour on numpy alone.

    Gymnasium 1.x semantics, step for step those of gymnasium.vector.SyncVectorEnv over the same
    sessions:
    - autoreset_mode NEXT_STEP (default): the step that ends sub-env i returns its last observation;
      the next step resets it (its action is ignored) and returns the reset observation with reward
      0 and terminated = truncated = False. SAME_STEP resets at once and puts the last observation
      and info in infos["final_obs"] / infos["final_info"]; DISABLED leaves resets to you
      (reset(options={"reset_mask": mask})).
    - infos is a dict: each key an array over sub-envs, with a boolean "_key" array marking which
      sub-envs set it.
    - reset(seed=s) seeds sub-env i with s + i (or takes a list of seeds).
    """

    def __init__(self, endpoints, config=None, *, autoreset_mode=AutoresetMode.NEXT_STEP, **kwargs):
        if isinstance(autoreset_mode, str):
            autoreset_mode = AutoresetMode(autoreset_mode)
        self.envs = []
        try:
            for e in endpoints:
                mine = kwargs
                if isinstance(e, tuple):  # (endpoint, server key) from an endpoints file
                    e, key = e
                    mine = dict(kwargs, curve_server_key=key or kwargs.get("curve_server_key"))
                self.envs.append(RemotePruneEnv(e, config, **mine))
        except BaseException:
            for env in self.envs:
                env.close()
            raise
        if not self.envs:
            raise ValueError("RemoteVectorEnv needs at least one endpoint")
        self.num_envs = len(self.envs)
        self.autoreset_mode = autoreset_mode
        self.metadata = {"autoreset_mode": autoreset_mode, "render_modes": []}
        self.single_action_space = self.envs[0].action_space
        self.single_observation_space = self.envs[0].observation_space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._obs = np.zeros((self.num_envs, *self.single_observation_space.shape), dtype=np.float32)
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)

    @classmethod
    def from_endpoints_file(cls, path, config=None, **kwargs):
        """One sub-env per server of an endpoints file (scripts/slurm-serve writes one), each with
        the CURVE key its line gives. Other arguments as for the constructor."""
        return cls(read_endpoints_file(path), config, **kwargs)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed if isinstance(seed, int) else None)
        if seed is None:
            seeds = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed lists must have num_envs = {self.num_envs} entries, got {len(seeds)}")
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is None:
            mask = np.ones(self.num_envs, dtype=np.bool_)
        elif not (isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == (self.num_envs,)):
            raise TypeError(f"options['reset_mask'] must be a numpy bool array of shape ({self.num_envs},)")
        ids = {i: self.envs[i]._send_reset(seeds[i], options or None) for i in range(self.num_envs) if mask[i]}
        infos = {}
        for i, rid in ids.items():
            self._obs[i], info = self.envs[i]._reset_result(self.envs[i]._receive(rid, "reset"))
            infos = add_info(infos, info, i, self.num_envs)
        self._autoreset[mask] = False
        return self._obs.copy(), infos

    def step(self, actions):
        actions = list(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"step needs one action per sub-env ({self.num_envs}), got {len(actions)}")
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=np.bool_)
        truncated = np.zeros(self.num_envs, dtype=np.bool_)
        resetting = self._autoreset & (self.autoreset_mode == AutoresetMode.NEXT_STEP)
        ids = [env._send_reset() if resetting[i] else env._send_step(a)
               for i, (env, a) in enumerate(zip(self.envs, actions))]
        infos = {}
        replies = []
        for i, (env, rid) in enumerate(zip(self.envs, ids)):
            if resetting[i]:
                self._obs[i], info = env._reset_result(env._receive(rid, "reset"))
            else:
                self._obs[i], rewards[i], terminated[i], truncated[i], info = env._step_result(env._receive(rid, "step"))
            replies.append(info)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            done = [i for i in range(self.num_envs) if terminated[i] or truncated[i]]
            reset_ids = {i: self.envs[i]._send_reset() for i in done}
            for i in range(self.num_envs):
                if i in reset_ids:
                    infos = add_info(infos, {"final_obs": self._obs[i].copy(), "final_info": replies[i]}, i,
                                     self.num_envs)
                    self._obs[i], replies[i] = self.envs[i]._reset_result(self.envs[i]._receive(reset_ids[i], "reset"))
                infos = add_info(infos, replies[i], i, self.num_envs)
        else:
            for i in range(self.num_envs):
                infos = add_info(infos, replies[i], i, self.num_envs)
        self._autoreset = terminated | truncated
        return self._obs.copy(), rewards, terminated, truncated, infos

    def close_extras(self, **kwargs):
        for env in self.envs:
            env.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

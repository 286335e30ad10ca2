"""RemoteVectorEnv: one learner drives N environment servers, stepping all of them in parallel."""

import numpy as np

from .client import RemotePruneEnv, _observation


class RemoteVectorEnv:
    """N RemotePruneEnv sessions (one per endpoint, endpoints may repeat) stepped in parallel:
    every request is sent before any reply is awaited, so the servers work concurrently.

    Episodes auto-reset like Gymnasium's vector envs: when sub-env i ends, its final observation
    and info go to infos["final_observation"][i] / infos["final_info"][i] and it is reset.
    """

    def __init__(self, endpoints, config=None, **kwargs):
        self.envs = [RemotePruneEnv(e, config, **kwargs) for e in endpoints]
        self.num_envs = len(self.envs)
        self.single_action_space = self.envs[0].action_space
        self.single_observation_space = self.envs[0].observation_space

    def reset(self, *, seed=None):
        ids = [env._send_reset(None if seed is None else seed + i) for i, env in enumerate(self.envs)]
        replies = [env._receive(rid, "reset") for env, rid in zip(self.envs, ids)]
        obs = np.stack([_observation(r) for r in replies])
        return obs, [r["info"] for r in replies]

    def step(self, actions):
        ids = [env._send_step(a) for env, a in zip(self.envs, actions)]
        replies = [env._receive(rid, "step") for env, rid in zip(self.envs, ids)]
        obs = np.stack([_observation(r) for r in replies])
        rewards = np.array([r["reward"] for r in replies], dtype=np.float64)
        terminated = np.array([r["terminated"] for r in replies])
        truncated = np.array([r["truncated"] for r in replies])
        infos = {"info": [r["info"] for r in replies], "final_observation": [None] * self.num_envs,
                 "final_info": [None] * self.num_envs}
        done = [i for i in range(self.num_envs) if terminated[i] or truncated[i]]
        ids = {i: self.envs[i]._send_reset() for i in done}
        for i, rid in ids.items():
            infos["final_observation"][i] = obs[i].copy()
            infos["final_info"][i] = replies[i]["info"]
            obs[i] = _observation(self.envs[i]._receive(rid, "reset"))
        return obs, rewards, terminated, truncated, infos

    def close(self):
        for env in self.envs:
            env.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

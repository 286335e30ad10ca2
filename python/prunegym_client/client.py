"""RemotePruneEnv: one environment session on a prunegym server."""

import base64
import itertools
import json
import time

import numpy as np
import zmq

from ._compat import Env
from .spaces import space_from_json

PROTOCOL_VERSION = 1


class RemoteError(RuntimeError):
    """An error reply from the server; `code` is one of the protocol's stable codes."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def load_config(path):
    """Reads a prunegym JSON config (// comments allowed) into a dict for `make`."""
    lines = []
    with open(path) as f:
        for line in f:
            stripped = line.lstrip()
            if stripped.startswith("//"):
                continue
            lines.append(line)
    return json.loads("".join(lines))


def read_endpoints_file(path):
    """The servers of an endpoints file (written by `prunegym serve --endpoint-file` and
    scripts/slurm-serve): a list of (endpoint, curve_server_key or None). One server per line,
    "ENDPOINT" or "ENDPOINT curve=KEY"; blank lines and "#" lines are skipped."""
    fleet = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            where = f"{path}:{number}: "
            if "://" not in words[0]:
                raise ValueError(where + f"{words[0]!r} is not an endpoint (tcp://host:port, ipc://path)")
            key = None
            for extra in words[1:]:
                if not extra.startswith("curve=") or len(extra) != 46:
                    raise ValueError(where + f"unexpected {extra!r} (a line is ENDPOINT [curve=40-character Z85 key])")
                key = extra[len("curve="):]
            fleet.append((words[0], key))
    if not fleet:
        raise ValueError(f"the endpoints file {path} lists no servers")
    return fleet


class Connection:
    """A DEALER socket with request ids and timeouts; late replies to timed-out requests are dropped."""

    _ids = itertools.count(1)

    def __init__(self, endpoint, timeout=60.0, curve_server_key=None, curve_keypair=None, context=None):
        self.endpoint = endpoint
        self.timeout = timeout
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        if curve_server_key:
            public, secret = curve_keypair or zmq.curve_keypair()
            public = public.encode() if isinstance(public, str) else public
            secret = secret.encode() if isinstance(secret, str) else secret
            self._sock.curve_serverkey = curve_server_key.encode() if isinstance(curve_server_key, str) else curve_server_key
            self._sock.curve_publickey = public
            self._sock.curve_secretkey = secret
        self._sock.connect(endpoint)

    def send(self, request):
        rid = next(self._ids)
        request = dict(request, id=rid, v=PROTOCOL_VERSION)
        self._sock.send(json.dumps(request).encode())
        return rid

    def receive(self, rid, timeout=None, what="request"):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sock.poll(int(left * 1000) + 1, zmq.POLLIN):
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"no reply from {self.endpoint} to {what!r} within {timeout:g} s "
                                       "(is the server running and reachable?)")
                continue
            frames = self._sock.recv_multipart()
            try:
                reply = json.loads(frames[-1])
            except ValueError as e:
                raise RemoteError("bad_json", f"the server sent a reply that is not JSON: {e}") from None
            if "id" not in reply and not reply.get("ok"):
                # The server could not read this request's id (a frame that is not one JSON
                # request): the error is about the request this client is waiting on.
                err = reply.get("error", {})
                raise RemoteError(err.get("code", "internal"), err.get("message", "the server reported an error"))
            if reply.get("id") != rid:
                continue  # a late reply to an earlier request
            if not reply.get("ok"):
                err = reply.get("error", {})
                raise RemoteError(err.get("code", "internal"), err.get("message", "the server reported an error"))
            return reply

    def call(self, request, timeout=None):
        return self.receive(self.send(request), timeout, request.get("cmd", "request"))

    def close(self):
        self._sock.close(0)


# Step-info keys that measure time: they differ between two runs of the same episode, so they are
# kept out of `info` (Gymnasium's determinism checks compare infos) unless timings_in_info=True.
TIMING_KEYS = ("prune_ms", "retrain_ms", "eval_ms")


class RemotePruneEnv(Env):
    """A Gymnasium environment living in a prunegym server (a gymnasium.Env when gymnasium is
    importable; the same API on numpy alone otherwise).

    config:        the JSON config (dict, or a path to a .json file) for a PruneEnv session
    kind:          "prune" (default) or "toy" (a tiny env with a known optimum, for testing agents)
    timeout:       seconds to wait for reset/step replies before raising TimeoutError
    make_timeout:  seconds to wait for `make` (the server may pretrain the dense model first)
    curve_server_key, curve_keypair: the server's Z85 public key, and this client's (public,
                   secret) Z85 pair when the server keeps an allow-list (generated otherwise)
    encoding:      how observations travel: "f32" (base64 float32, lossless and cheaper to decode)
                   or "json" (a list of numbers)
    timings_in_info: keep prune_ms/retrain_ms/eval_ms in `info`; by default they go to
                   `env.last_timings` so that `info` is a deterministic function of seed and actions
    """

    metadata = {"render_modes": []}
    render_mode = None

    def __init__(self, endpoint, config=None, *, kind="prune", toy=None, timeout=60.0, make_timeout=900.0,
                 curve_server_key=None, curve_keypair=None, use_gymnasium=True, encoding="f32",
                 timings_in_info=False):
        if encoding not in ("f32", "json"):
            raise ValueError(f"encoding must be 'f32' or 'json', got {encoding!r}")
        self.session = None
        self.timings_in_info = timings_in_info
        self.last_timings = {}
        self._conn = Connection(endpoint, timeout, curve_server_key, curve_keypair)
        try:
            hello = self._conn.call({"cmd": "hello"})
            if hello.get("protocol") != PROTOCOL_VERSION:
                raise RemoteError("bad_argument", f"server speaks protocol {hello.get('protocol')}, "
                                                  f"this client {PROTOCOL_VERSION}")
            self.server_info = hello
            request = {"cmd": "make", "kind": kind, "encoding": encoding}
            if kind == "prune":
                if config is None:
                    raise ValueError("a prune session needs a config (dict or path)")
                request["config"] = load_config(config) if isinstance(config, str) else config
            elif toy is not None:
                request["toy"] = toy
            made = self._conn.call(request, timeout=make_timeout)
            self.session = made["session"]
            self.make_info = made.get("info", {})
            self.action_space = space_from_json(made["action_space"], use_gymnasium)
            self.observation_space = space_from_json(made["observation_space"], use_gymnasium)
        except BaseException:
            self._conn.close()  # nothing is left open when make fails
            self._conn = None
            raise

    # -- Gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)  # seeds self.np_random, as Gymnasium expects
        request = {"cmd": "reset", "session": self.session}
        if seed is not None:
            request["seed"] = int(seed)
        if options:
            request["options"] = options
        return self._reset_result(self._conn.call(request))

    def step(self, action):
        return self._step_result(self._conn.call({"cmd": "step", "session": self.session,
                                                  "action": _action_to_json(action)}))

    def render(self):
        return None  # nothing to draw: render_mode is None

    def _info(self, info):
        self.last_timings = {k: info[k] for k in TIMING_KEYS if k in info}
        if self.timings_in_info:
            return info
        return {k: v for k, v in info.items() if k not in TIMING_KEYS}

    def _reset_result(self, reply):
        return _observation(reply), self._info(reply["info"])

    def _step_result(self, reply):
        return (_observation(reply), float(reply["reward"]), bool(reply["terminated"]), bool(reply["truncated"]),
                self._info(reply["info"]))

    def close(self):
        if getattr(self, "_conn", None) is None:
            return  # closed already, or the constructor failed before connecting
        if self.session is not None:
            session, self.session = self.session, None
            try:
                self._conn.call({"cmd": "close", "session": session}, timeout=min(self._conn.timeout, 5.0))
            except (TimeoutError, RemoteError):
                pass  # the server expires idle sessions anyway
        self._conn.close()
        self._conn = None

    # -- extras ----------------------------------------------------------------------------------
    def snapshot(self):
        """Saves the whole env state on the server; returns a name for restore()."""
        return self._conn.call({"cmd": "snapshot", "session": self.session})["snapshot"]

    def restore(self, name, drop=False):
        self._conn.call({"cmd": "restore", "session": self.session, "snapshot": name, "drop": drop})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Split step for vector envs: send now, collect later.
    def _send_step(self, action):
        return self._conn.send({"cmd": "step", "session": self.session, "action": _action_to_json(action)})

    def _send_reset(self, seed=None, options=None):
        request = {"cmd": "reset", "session": self.session}
        if seed is not None:
            request["seed"] = int(seed)
            Env.reset(self, seed=seed)
        if options:
            request["options"] = options
        return self._conn.send(request)

    def _receive(self, rid, what):
        return self._conn.receive(rid, None, what)


def _observation(reply):
    """The reply's observation as float32, from either encoding."""
    if "observation_f32" in reply:
        return np.frombuffer(base64.b64decode(reply["observation_f32"]), dtype="<f4").astype(np.float32)
    return np.asarray(reply["observation"], dtype=np.float32)


def _action_to_json(action):
    if isinstance(action, (list, tuple, np.ndarray)) and np.ndim(action) > 0:
        return [float(a) for a in np.asarray(action).ravel()]
    if isinstance(action, (float, np.floating)) and not float(action).is_integer():
        return [float(action)]
    return int(action)

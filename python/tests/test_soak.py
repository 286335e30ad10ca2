"""A bounded soak of the bridge (loopback, stops by itself): 8 clients x 500 requests, steps of
toy sessions mixed with malformed, oversized and wrong-session messages. Every request must get
exactly one reply with its id, the server must stay up, and its memory must stay flat."""

import json
import random
import threading

import zmq

from test_client import Server

CLIENTS, REQUESTS = 8, 500


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def client(endpoint, seed, results):
    rng = random.Random(seed)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)

    def call(payload, rid):
        sock.send(payload)
        if not sock.poll(30000):
            return None
        return json.loads(sock.recv())

    made = call(json.dumps({"cmd": "make", "kind": "toy", "toy": {"steps": 4, "actions": 5}, "id": 0}).encode(), 0)
    session = made["session"]
    call(json.dumps({"cmd": "reset", "session": session, "id": 0}).encode(), 0)
    lost = wrong = 0
    for i in range(1, REQUESTS + 1):
        kind = rng.random()
        if kind < 0.6:
            req = {"cmd": "step", "session": session, "action": rng.randrange(5), "id": i}
        elif kind < 0.7:
            req = {"cmd": "step", "session": session, "action": rng.choice([99, -1, "x", 2 ** 63, 1.5]), "id": i}
        elif kind < 0.8:
            req = {"cmd": rng.choice(["fly", "step", "reset"]), "session": "nope", "id": i}
        elif kind < 0.85:
            req = {"cmd": "ping", "pad": "x" * 2_000_000, "id": i}  # above --max-message
        elif kind < 0.9:
            req = None  # not JSON: the reply has no id
        else:
            req = {"cmd": "reset", "session": session, "id": i}
        payload = b"{broken" if req is None else json.dumps(req).encode()
        reply = call(payload, i)
        if reply is None:
            lost += 1
        elif req is not None and reply.get("id") != i:
            wrong += 1
        if reply and reply.get("error", {}).get("code") == "episode_over":
            call(json.dumps({"cmd": "reset", "session": session, "id": -1}).encode(), -1)
    call(json.dumps({"cmd": "close", "session": session, "id": -2}).encode(), -2)
    sock.close()
    results[seed] = (lost, wrong)


def test_soak_many_clients_with_bad_messages_lose_nothing():
    s = Server("--workers", "2")
    try:
        results = {}
        warm = [threading.Thread(target=client, args=(s.endpoint, 100 + k, results)) for k in range(CLIENTS)]
        for t in warm:
            t.start()
        for t in warm:
            t.join()
        before = rss_kib(s.proc.pid)  # after one full round: allocator pools and caches exist
        threads = [threading.Thread(target=client, args=(s.endpoint, k, results)) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = rss_kib(s.proc.pid)
        assert len(results) == 2 * CLIENTS
        assert all(lost == 0 and wrong == 0 for lost, wrong in results.values()), results
        assert s.proc.poll() is None
        assert after - before < 32 * 1024, f"server RSS grew from {before} to {after} KiB over {CLIENTS * REQUESTS} requests"
    finally:
        assert s.stop() == 0

#!/usr/bin/env python3
"""Writes the fuzz target's seed corpus: every one-line request in docs/protocol.md (session ids
replaced by the harness's placeholders), a few request sequences over live sessions, and the
doc's one-line replies for the client-side readers ('#' prefix). Usage: seed_corpus.py DOC OUTDIR"""
import json
import pathlib
import re
import sys


def requests_from_doc(text):
    """(request, reply) pairs from lines such as `{"cmd": ...}  →  {"ok": true, ...}`."""
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith('{"cmd"'):
            continue
        request, _, reply = line.partition("→")
        try:
            json.loads(request)
        except ValueError:
            continue
        pairs.append((request.strip(), reply.strip()))
    return pairs


SEQUENCES = [
    # Toy session lifecycles, including episode ends and snapshots.
    ['{"cmd": "make", "kind": "toy", "toy": {"steps": 2, "actions": 3}, "id": 1}',
     '{"cmd": "reset", "session": "@N", "seed": 1}', '{"cmd": "step", "session": "@N", "action": 1}',
     '{"cmd": "snapshot", "session": "@N"}', '{"cmd": "step", "session": "@N", "action": 2}',
     '{"cmd": "step", "session": "@N", "action": 0}', '{"cmd": "restore", "session": "@N", "snapshot": "snap-1", "drop": true}',
     '{"cmd": "close", "session": "@N"}'],
    ['{"cmd": "make", "kind": "toy", "encoding": "f32", "toy": {"sparse": true, "observation_size": 5}}',
     '{"cmd": "reset", "session": "@N", "options": {"x": 1}}', '{"cmd": "step", "session": "@N", "action": [0.5]}'],
    # The harness's prune session: reset, steps, snapshot and restore on a real PruneEnv.
    ['{"cmd": "reset", "session": "@P", "seed": 0, "options": {"target_sparsity": 0.5}}',
     '{"cmd": "step", "session": "@P", "action": 10, "id": "a"}', '{"cmd": "snapshot", "session": "@P"}',
     '{"cmd": "step", "session": "@P", "action": 22}', '{"cmd": "restore", "session": "@P", "snapshot": "snap-1"}'],
    ['{"cmd": "reset", "session": "@T"}', '{"cmd": "step", "session": "@T", "action": 3.0}',
     '{"cmd": "step", "session": "@T", "action": 9223372036854775808}'],
    # Remote configs at and past the work limits.
    ['{"cmd": "make", "config": {"data": {"source": "synthetic", "synthetic": {"train": 64, "test": 16, "height": 4, '
     '"width": 4}}, "network": {"name": "custom", "layers": ["flatten", "linear:8", "relu", "linear"], '
     '"pretrain": {"epochs": 1}}, "env": {"retrain": {"samples": 16}, "actions": {"step": 0.5}}}}',
     '{"cmd": "reset", "session": "@N"}', '{"cmd": "step", "session": "@N", "action": 1}'],
    ['{"cmd": "make", "config": {"network": {"pretrain": {"epochs": 100000}}}}'],
    ['{"cmd": "make", "config": {"env": {"actions": {"step": 1e-9}}}, "id": null}'],
    ['{"cmd": "make", "config": {"data": {"source": "mnist", "path": "/etc"}}}'],
    ['{"cmd": "make", "config": {"cache_dir": "/tmp"}}'],
    ['{"cmd": "hello", "v": 2, "id": [1]}', '{"cmd": "reset", "session": "@T", "seed": 1.5}',
     '{"cmd": "reset", "session": "@T", "seed": -1}', '{"cmd": 5}', '[]', '{"cmd": "nope", "id": {"a": 1}}'],
]

CLIENT = [
    '{"ok": true, "observation_f32": "AAAAAI/CdT8AAAAA", "info": {}}',
    '{"ok": true, "observation": [1.0, 0.95, 0.5], "reward": -0.3, "terminated": false, "truncated": false, '
    '"info": {"step": 1, "layer_sparsities": [0.66, 0.0]}}',
    '{"ok": false, "error": {"code": "limit", "message": "too big"}}',
    '[1, 2.5, 3]',
    'AAAAAI/CdT8=',
]


def main():
    doc, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    seeds = []
    for n, (request, reply) in enumerate(requests_from_doc(doc.read_text())):
        seeds.append(re.sub(r'"5f3d[^"]*"', '"@T"' if n % 2 else '"@P"', request))
        if reply.startswith("{"):
            seeds.append("#" + reply)
    seeds += ["\n".join(s) for s in SEQUENCES]
    seeds += ["#" + c for c in CLIENT]
    for n, seed in enumerate(seeds):
        (out / f"seed-{n:03d}").write_text(seed)
    print(f"{len(seeds)} seed inputs in {out}")


if __name__ == "__main__":
    main()

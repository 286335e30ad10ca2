"""bench/reproduce.py's bookkeeping: which runs belong to the current configs, collecting them into
raw/ with their folder names, and putting them back in a fresh clone so the bench resumes instead
of recomputing (with a stand-in for `prunegym bench --dry-run`)."""

import json
import os
import pathlib
import shutil
import sys

ROOT = pathlib.Path(os.environ.get("PRUNEGYM_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(ROOT / "bench"))
import reproduce  # noqa: E402


def fake_cli(tmp_path, lines):
    cli = tmp_path / "prunegym"
    cli.write_text("#!/bin/sh\ncat <<'EOF'\n" + "\n".join(lines) + "\nEOF\n")
    cli.chmod(0o755)
    return str(cli)


def make_run(folder, seed, files=("summary.json", "episodes.csv", "run.json")):
    folder.mkdir(parents=True)
    for f in files:
        (folder / f).write_text(json.dumps({"seed": seed}) if f == "summary.json" else f"{f} of {folder.name}\n")


def test_collect_keeps_only_current_runs_and_restore_puts_them_back(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "ROOT", tmp_path)
    monkeypatch.setattr(reproduce, "CLI", fake_cli(tmp_path, [
        "bench g.json: 2 variants x 1 seeds = 2 runs, 1 cached, 1 to run, 1 at a time",
        f"cached {tmp_path}/runs/grid/runs/a-s0-1111", f"todo   {tmp_path}/runs/grid/runs/b-s0-2222"]))
    plan = reproduce.planned_runs("grid", 1)
    assert plan == {"a-s0-1111", "b-s0-2222"}

    runs = tmp_path / "runs" / "grid" / "runs"
    make_run(runs / "a-s0-1111", 0)
    make_run(runs / "old-s0-9999", 0)  # a run of a config that has since changed
    (runs / "b-s0-2222").mkdir()      # unfinished: no summary.json
    exp = {"grids": ["grid"], "seeds": 1, "out": tmp_path / "results", "provenance": {},
           "files": ("summary.json", "episodes.csv", "run.json")}
    session = {"commit": "c0ffee", "dirty": False, "command": "x", "date": "today", "wall_seconds": 1.0}
    reproduce.collect(exp, [session], "bench/reproduce.py test", {"grid": plan})
    raw = tmp_path / "results" / "raw" / "grid"
    assert sorted(p.name for p in raw.iterdir()) == ["a-s0"]
    assert (raw / "a-s0" / "origin.txt").read_text().strip() == "a-s0-1111"
    prov = json.loads((tmp_path / "results" / "provenance.json").read_text())
    assert prov["sessions"] == [session] and prov["seeds"] == [0]

    # A fresh clone: no runs/ at all. Restoring brings back the finished run, and nothing stale.
    shutil.rmtree(tmp_path / "runs")
    reproduce.restore(exp, "grid", plan)
    assert (runs / "a-s0-1111" / "summary.json").exists()
    assert (runs / "a-s0-1111" / "run.json").read_text() == "run.json of a-s0-1111\n"
    assert not (runs / "old-s0-9999").exists() and not (runs / "a-s0-1111" / "origin.txt").exists()

    # A second collect keeps the earlier session's record beside the new one.
    reproduce.collect(exp, [dict(session, commit="beef")], "bench/reproduce.py test", {"grid": plan})
    prov = json.loads((tmp_path / "results" / "provenance.json").read_text())
    assert [s["commit"] for s in prov["sessions"]] == ["c0ffee", "beef"] and prov["commit"] == "beef"


def test_command_runs_are_skipped_only_while_their_arguments_and_config_are_unchanged(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "ROOT", tmp_path)
    (tmp_path / "c.json").write_text("{}")
    key = reproduce.run_key(["lottery", "--config", "c.json", "--set", "seed=0"])
    assert key == {"args": ["lottery", "--config", "c.json", "--set", "seed=0"], "config_text": "{}"}
    (tmp_path / "c.json").write_text('{"lottery": {}}')
    assert reproduce.run_key(["lottery", "--config", "c.json", "--set", "seed=0"]) != key


def test_pretraining_checkpoints_travel_through_the_repository(tmp_path, monkeypatch):
    import checkpoints
    cache, kept = tmp_path / "cache", tmp_path / "exp" / "checkpoints"
    monkeypatch.setenv("PRUNEGYM_CACHE", str(cache))
    cache.mkdir()
    (cache / "dense-resnet50-aa.pt.partial").write_bytes(b"epoch 8")
    (cache / "dense-lenet-bb.pt.partial").write_bytes(b"not this experiment's")
    checkpoints.sync(kept, "dense-resnet50-*.pt.partial")
    assert sorted(p.name for p in kept.iterdir()) == ["dense-resnet50-aa.pt.partial"]

    shutil.rmtree(cache)  # a fresh machine: the committed copy goes back into the cache
    assert checkpoints.restore(kept, "dense-resnet50-*.pt.partial") == ["dense-resnet50-aa.pt.partial"]
    assert (cache / "dense-resnet50-aa.pt.partial").read_bytes() == b"epoch 8"
    (cache / "dense-resnet50-aa.pt.partial").write_bytes(b"epoch 9")  # a newer epoch is never overwritten
    assert checkpoints.restore(kept, "dense-resnet50-*.pt.partial") == []
    checkpoints.sync(kept, "dense-resnet50-*.pt.partial")
    assert (kept / "dense-resnet50-aa.pt.partial").read_bytes() == b"epoch 9"

    (cache / "dense-resnet50-aa.pt.partial").unlink()  # the pretraining finished: its copy goes
    (cache / "dense-resnet50-aa.pt").write_bytes(b"final")
    checkpoints.sync(kept, "dense-resnet50-*.pt.partial")
    assert list(kept.iterdir()) == []
    assert checkpoints.restore(kept, "dense-resnet50-*.pt.partial") == []
    checkpoints.sync(kept, "dense-resnet50-*.pt")  # a finished model is kept when its pattern says so
    assert [p.name for p in kept.iterdir()] == ["dense-resnet50-aa.pt"]
    shutil.rmtree(cache)
    assert checkpoints.restore(kept, "dense-resnet50-*.pt") == ["dense-resnet50-aa.pt"]
    assert (cache / "dense-resnet50-aa.pt").read_bytes() == b"final"
    assert checkpoints.restore(kept, "dense-resnet50-*.pt.partial") == []  # nothing left to resume


def test_an_experiment_that_prunes_another_ones_model_only_restores_it(tmp_path, monkeypatch):
    import checkpoints
    cache, kept = tmp_path / "cache", tmp_path / "dense" / "checkpoints"
    monkeypatch.setenv("PRUNEGYM_CACHE", str(cache))
    kept.mkdir(parents=True)
    (kept / "dense-resnet50-aa.pt").write_bytes(b"the committed model")
    exp = {"out": tmp_path / "pruning", "checkpoints": "dense-resnet50-*.pt", "checkpoints_dir": kept,
           "checkpoints_restore_only": True}
    with checkpoints.Keeper(exp, period=0.01):
        assert (cache / "dense-resnet50-aa.pt").read_bytes() == b"the committed model"
        (cache / "dense-resnet50-bb.pt").write_bytes(b"another width, pretrained by a test")
    assert sorted(p.name for p in kept.iterdir()) == ["dense-resnet50-aa.pt"]  # nothing swept in
    del exp["checkpoints_restore_only"]  # the owner's Keeper mirrors what its pattern matches
    with checkpoints.Keeper(exp, period=60):
        pass
    assert sorted(p.name for p in kept.iterdir()) == ["dense-resnet50-aa.pt", "dense-resnet50-bb.pt"]


def test_the_page_names_the_runs_under_way(tmp_path):
    import json as _json
    import partial_runs
    assert partial_runs.progress_lines(tmp_path) == []  # nothing kept: no notice
    run = tmp_path / "partial" / "grid" / "dqn-s0-abcd"
    run.mkdir(parents=True)
    (run / "run.json").write_text(_json.dumps({"records": [{}] * 8, "episodes": 20}))
    (tmp_path / "partial" / "grid" / "broken-s1-ef01").mkdir()  # no run.json: shown at episode 0
    assert partial_runs.progress(tmp_path) == [("grid", "broken-s1-ef01", 0, 0), ("grid", "dqn-s0-abcd", 8, 20)]
    text = partial_runs.progress_lines(tmp_path)[0]
    assert "`dqn-s0-abcd` at episode 8 of 20" in text and "`broken-s1-ef01` at episode 0 of ?" in text


def test_unfinished_bench_runs_travel_through_the_repository(tmp_path):
    """An unfinished run's resume state is mirrored while it runs and put back on a fresh machine only
    where the run there is behind; a finished run is kept whole until collected, and put back finished."""
    import json as _json
    import partial_runs
    kept, runs = tmp_path / "exp" / "partial" / "g", tmp_path / "runs" / "g" / "runs"
    run = runs / "a-s0-1234"
    run.mkdir(parents=True)

    def record(folder, episodes):
        (folder / "run.json").write_text(_json.dumps({"records": [{}] * episodes, "episodes": 55}))
        (folder / "agent.ckpt").write_bytes(b"after %d" % episodes)

    record(run, 3)
    (run / "pruned_model.pt").write_bytes(b"big, not needed to resume")
    partial_runs.sync(kept, runs)
    assert sorted(p.name for p in (kept / "a-s0-1234").iterdir()) == ["agent.ckpt", "run.json"]

    shutil.rmtree(tmp_path / "runs")  # a fresh machine
    assert partial_runs.restore(kept, runs) == ["a-s0-1234"]
    assert (run / "agent.ckpt").read_bytes() == b"after 3"
    record(run, 5)  # the resumed run got further: the older copy never overwrites it
    assert partial_runs.restore(kept, runs) == []
    partial_runs.sync(kept, runs)
    assert (kept / "a-s0-1234" / "agent.ckpt").read_bytes() == b"after 5"
    (run / "pruned_model.pt").write_bytes(b"the final network")
    (run / "summary.json").write_text("{}")  # finished: kept whole until the experiment collects it
    partial_runs.sync(kept, runs)
    assert sorted(p.name for p in (kept / "a-s0-1234").iterdir()) == [
        "agent.ckpt", "pruned_model.pt", "run.json", "summary.json"]
    shutil.rmtree(tmp_path / "runs")  # the session ended before the collection: the next finds it finished
    assert partial_runs.restore(kept, runs) == ["a-s0-1234"]
    assert (run / "summary.json").exists() and (run / "pruned_model.pt").read_bytes() == b"the final network"
    assert partial_runs.restore(kept, runs) == []

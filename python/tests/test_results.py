"""Published tables come from committed raw files: regenerating them must give the committed text.
Covers every results folder that bench/reproduce.py writes (raw/ + provenance.json)."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(os.environ.get("PRUNEGYM_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(ROOT / "bench"))
import reproduce  # noqa: E402  (bench/reproduce.py: every experiment and its results folder)

EXPERIMENTS = {name: exp["out"] for name, exp in reproduce.EXPERIMENTS.items()}


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_tables_regenerate_from_the_committed_raw_files(name, tmp_path):
    folder = EXPERIMENTS[name]
    if not (folder / "raw").is_dir():
        pytest.skip(f"{folder} has no raw/ results yet (bench/reproduce.py {name} writes them)")
    proc = subprocess.run(["/usr/bin/python3", str(ROOT / "bench/reproduce.py"), name, "--render-only", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    tables = sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".md", ".csv"))
    assert "README.md" in tables, proc.stderr
    for table in tables:
        assert (tmp_path / table).read_text() == (folder / table).read_text(), (
            f"{folder / table} differs from what bench/reproduce.py {name} --render-only generates from raw/: "
            "regenerate it instead of editing it")


def test_the_status_index_regenerates_from_the_committed_raw_files(tmp_path):
    index = ROOT / "docs/results/README.md"
    assert index.exists(), "docs/results/README.md is missing: bench/reproduce.py --index writes it"
    proc = subprocess.run(["/usr/bin/python3", str(ROOT / "bench/reproduce.py"), "--index", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "README.md").read_text() == index.read_text(), (
        "docs/results/README.md differs from what bench/reproduce.py --index generates: regenerate it")


def test_the_index_counts_a_seed_complete_only_when_all_its_runs_are_in(tmp_path, monkeypatch):
    exp = dict(reproduce.EXPERIMENTS["seed001"], out=tmp_path / "seed001")
    names = sorted(reproduce.planned_names(exp, 0))
    for name in names[:-1]:
        (exp["out"] / "raw" / name).mkdir(parents=True)
    st = reproduce.status(exp)
    assert st["complete"] == [] and st["runs"] == len(names) - 1
    (exp["out"] / "raw" / names[-1]).mkdir(parents=True)
    (exp["out"] / "raw" / "stale-run-s0").mkdir()  # not planned any more: not counted
    st = reproduce.status(exp)
    assert st["complete"] == [0] and st["runs"] == len(names)
    assert st["planned"] == len(names) * exp["seeds"]


def test_jsonc_comments_are_dropped_outside_strings_only(tmp_path):
    path = tmp_path / "grid.json"
    path.write_text('{\n  // a comment "with quotes"\n  "url": "http://x//y", // trailing\n  "q": "a\\"//b"\n}\n')
    assert reproduce.load_jsonc(path) == {"url": "http://x//y", "q": 'a"//b'}


def test_the_heap_pad_table_regenerates_from_its_record(tmp_path):
    folder = ROOT / "docs/results/heap-pad"
    if not (folder / "heap-pad.json").exists():
        pytest.skip("docs/results/heap-pad has no record yet (bench/heap_pad.py writes it)")
    (tmp_path / "heap-pad.json").write_text((folder / "heap-pad.json").read_text())
    proc = subprocess.run(["/usr/bin/python3", str(ROOT / "bench/heap_pad.py"), "--render-only", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "README.md").read_text() == (folder / "README.md").read_text(), (
        "docs/results/heap-pad/README.md differs from what bench/heap_pad.py --render-only generates: regenerate it")


def test_a_verdict_says_when_its_rule_changed_after_the_runs():
    import copy
    import claims  # bench/claims.py
    data = claims.load()
    name, claim_id = "seed000", "lth_dominates_q"
    recorded = [{"claims": claims.hashes(name, data)}]
    assert claims.status(name, claim_id, recorded, data) == "", "runs recorded under the current rule are clean"
    assert claims.verdict(name, claim_id, "holds.", recorded, data) == "holds."
    changed = copy.deepcopy(data)
    for c in changed["experiments"][name]["claims"]:
        if c["id"] == claim_id:
            c["thresholds"]["most"] = 0.7  # the threshold moved after the runs
    note = claims.status(name, claim_id, recorded, changed)
    assert note.startswith("rule changed after the runs"), note
    assert claims.verdict(name, claim_id, "holds.", recorded, changed).startswith("**rule changed after the runs")
    # Moving the shared verdict words changes the rules that use them.
    words = copy.deepcopy(data)
    words["verdict_words"]["most"]["at_least"] = 0.75
    assert claims.status(name, "lth_beats_q", recorded, words).startswith("rule changed after the runs")
    # Runs recorded before rules were hashed: a late rule, or the changes written down for it.
    assert claims.status(name, claim_id, [{}], data).startswith("rule declared after the runs")
    assert claims.status("seed003", "strategies_keep_dense", [{}], data).startswith("rule changed after the runs")
    assert claims.status(name, "no_such_claim", recorded, data) == "no rule declared in bench/claims.json"


def test_every_declared_claim_names_its_rule_and_thresholds():
    import claims
    data = claims.load()
    for name, exp in data["experiments"].items():
        assert name in EXPERIMENTS, f"bench/claims.json declares claims for an unknown experiment {name}"
        for c in exp["claims"]:
            for key in ("id", "seed", "comparison", "rule", "thresholds", "verdicts"):
                assert key in c, f"{name}.{c.get('id')}: '{key}' missing"

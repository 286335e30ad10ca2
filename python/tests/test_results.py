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

"""Carries unfinished `prunegym bench` runs from one session to the next through the repository.

A bench run resumes per episode from its folder (run.json holds the episode records so far, agent.ckpt
the agent), but `runs/` is not committed and background work ends with the session, so a run
longer than a session was lost with the machine. An experiment that declares `"partial_runs":
true` keeps a copy of each unfinished run folder's resume state in `<experiment>/partial/<grid>/
<run key>/` while it runs (every few minutes and at the end); the next session copies it back
into `runs/<grid>/runs/<run key>/` before the bench starts, unless the folder there is as far or
further. The run key is the hash of the run's resolved config, so a copy can only resume the run
it came from. A run that finishes is kept whole (its summary and exported model too) until the
experiment collects it into raw/, which happens only when its whole bench (every variant of the
seed) is done: a session that ends between the two no longer loses a finished run, and the next
one finds it finished.
"""
import json
import os
import pathlib
import shutil
import sys
import threading

# What a resume reads (experiments/src/train_run.cpp), and what tells how far a run got.
FILES = ("run.json", "agent.ckpt", "episodes.csv", "config.json", "input.json", "log.txt")


def episodes_done(folder):
    """Episodes recorded in a run folder's run.json (0 when there is none or it is unreadable)."""
    try:
        return len(json.loads((folder / "run.json").read_text()).get("records", []))
    except (OSError, ValueError, AttributeError):
        return 0


def restore(kept, runs):
    """Copies kept unfinished runs into `runs` where the run there is missing or behind; returns
    the run keys put back."""
    back = []
    for copy in sorted(kept.iterdir()) if kept.is_dir() else []:
        dest = runs / copy.name
        finished = (copy / "summary.json").exists()
        if (dest / "summary.json").exists() or (not finished and episodes_done(dest) >= episodes_done(copy)):
            continue
        dest.mkdir(parents=True, exist_ok=True)
        for f in sorted(p.name for p in copy.iterdir()) if finished else FILES:
            if (copy / f).exists():
                shutil.copy2(copy / f, dest / (f + ".tmp"))
                os.replace(dest / (f + ".tmp"), dest / f)
        back.append(copy.name)
    if back:
        print(f"restored {len(back)} unfinished runs ({', '.join(back)}) from {kept}", file=sys.stderr)
    return back


def sync(kept, runs):
    """Mirrors every unfinished run folder's resume state into `kept` (when it got further than
    the copy), and a finished run's whole folder once (until collect() drops it)."""
    for folder in sorted(runs.iterdir()) if runs.is_dir() else []:
        copy = kept / folder.name
        finished = (folder / "summary.json").exists()
        if finished and (copy / "summary.json").exists():
            continue
        done = episodes_done(folder)
        if not finished and (done == 0 or done <= episodes_done(copy)):
            continue
        files = sorted(p.name for p in folder.iterdir() if p.is_file()) if finished else FILES
        staging = kept / (folder.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            for f in files:
                if (folder / f).exists():
                    shutil.copy2(folder / f, staging / f)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # the run rewrote a file meanwhile: next round
            continue
        if episodes_done(staging) == 0:  # caught run.json mid-write
            shutil.rmtree(staging, ignore_errors=True)
            continue
        shutil.rmtree(copy, ignore_errors=True)
        os.replace(staging, copy)


def progress(out):
    """(grid, run key, episodes done, episodes planned) for every unfinished run kept under
    out/partial/, in folder order: what an experiment's page says of the runs under way."""
    rows = []
    partial = pathlib.Path(out) / "partial"
    for grid in sorted(partial.iterdir()) if partial.is_dir() else []:
        for run in sorted(grid.iterdir()) if grid.is_dir() else []:
            try:  # one read of the record gives both figures
                record = json.loads((run / "run.json").read_text())
                done, planned = len(record.get("records", [])), int(record.get("episodes", 0))
            except (OSError, ValueError, AttributeError, TypeError):
                done, planned = 0, 0
            rows.append((grid.name, run.name, done, planned))
    return rows


def progress_lines(out):
    """The page's notice of unfinished runs (none when nothing is under way)."""
    rows = progress(out)
    if not rows:
        return []
    runs = "; ".join(f"`{key}` at episode {done} of {planned or '?'}" for _, key, done, planned in rows)
    return [f"**Runs under way** (their resume state is in [partial/](partial), so the next session continues "
            f"them; they count here only once finished): {runs}.", ""]


class Keeper:
    """`with Keeper(exp, grid, root):` restores at entry, then syncs every `period` seconds and at exit."""

    def __init__(self, exp, grid, root, period=300.0):
        self.enabled = bool(exp.get("partial_runs"))
        self.kept = pathlib.Path(exp["out"]) / "partial" / grid
        self.runs = pathlib.Path(root) / "runs" / grid / "runs"
        self.period = period
        self.stop = threading.Event()
        self.thread = None

    def __enter__(self):
        if self.enabled:
            restore(self.kept, self.runs)
            self.thread = threading.Thread(target=self._loop, daemon=True)
            self.thread.start()
        return self

    def _loop(self):
        while not self.stop.wait(self.period):
            sync(self.kept, self.runs)

    def __exit__(self, *exc):
        if self.thread:
            self.stop.set()
            self.thread.join()
            sync(self.kept, self.runs)
        return False

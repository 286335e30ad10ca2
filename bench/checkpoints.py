"""Carries pretraining checkpoints from one session to the next through the repository.

A `prunegym pretrain` leaves its state after every epoch in `<cache file>.partial` (weights,
optimizer state, the shuffle RNG; see `prunegym pretrain --help`). The cache folder does not
survive a fresh machine, and some pretrainings (purl-table2-dense's wider ResNet-50) take longer
than a session. An experiment that declares `"checkpoints": "<glob>"` keeps copies of the matching
partial files in `<experiment>/checkpoints/` while it runs (every minute and at the end); the next
session puts them back into the cache before its runs start. The partial file carries its own key
(network, data, optimizer, epochs), so a stale copy is reported and ignored by the pretraining, never
resumed from. When the pretraining finishes, the cache holds the final model, the partial file is
gone and so is its committed copy. A pattern without `.partial` keeps finished models the same way,
so that a fresh clone prunes the committed dense network instead of pretraining it again; another
experiment that prunes it names the folder with `"checkpoints_dir"` and `"checkpoints_restore_only":
True`: it takes the committed model but never writes into the other experiment's folder (its
pattern would otherwise also sweep in any other cached model it matches).
"""
import os
import pathlib
import shutil
import sys
import threading


def cache_dir():
    """The folder `prunegym` caches dense models in when the config names none (config.cpp)."""
    for var, suffix in (("PRUNEGYM_CACHE", ""), ("XDG_CACHE_HOME", "prunegym")):
        if os.environ.get(var):
            return pathlib.Path(os.environ[var]) / suffix
    return pathlib.Path.home() / ".cache/prunegym"


def _final(name):
    """The finished model a kept file leads to: itself, or the partial file's final name."""
    return name[: -len(".partial")] if name.endswith(".partial") else name


def restore(kept, pattern):
    """Copies committed files into the cache when the cache holds neither them nor the finished
    model they lead to; returns the names put back."""
    cache = cache_dir()
    back = []
    for f in sorted(kept.glob(pattern)) if kept.is_dir() else []:
        if (cache / f.name).exists() or (cache / _final(f.name)).exists():
            continue
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, cache / (f.name + ".tmp"))
        os.replace(cache / (f.name + ".tmp"), cache / f.name)
        back.append(f.name)
    if back:
        print(f"restored pretraining checkpoints {', '.join(back)} from {kept} into {cache}", file=sys.stderr)
    return back


def sync(kept, pattern):
    """Mirrors the cache's matching files into `kept` (atomically, changed ones only) and
    drops kept copies whose pretraining has finished (its final cache file exists)."""
    cache = cache_dir()
    for f in sorted(cache.glob(pattern)) if cache.is_dir() else []:
        dest = kept / f.name
        try:
            stat = f.stat()
            if dest.exists() and dest.stat().st_size == stat.st_size and dest.stat().st_mtime >= stat.st_mtime:
                continue
            kept.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, kept / (f.name + ".tmp"))
            os.replace(kept / (f.name + ".tmp"), dest)
        except OSError:
            continue  # the pretraining replaced it while we copied: the next round takes it
    for dest in sorted(kept.glob(pattern)) if kept.is_dir() else []:
        if dest.name.endswith(".partial") and (cache / _final(dest.name)).exists():
            dest.unlink()


class Keeper:
    """`with Keeper(exp):` restores at entry, then syncs every `period` seconds and at exit."""

    def __init__(self, exp, period=60.0):
        pattern = exp.get("checkpoints") or []
        self.patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        self.kept = exp.get("checkpoints_dir", exp["out"] / "checkpoints")
        self.restore_only = bool(exp.get("checkpoints_restore_only", False))
        self.period = period
        self.stop = threading.Event()
        self.thread = None

    def __enter__(self):
        if self.patterns:
            for pattern in self.patterns:
                restore(self.kept, pattern)
            if self.restore_only:
                return self
            self.thread = threading.Thread(target=self._loop, daemon=True)
            self.thread.start()
        return self

    def _loop(self):
        while not self.stop.wait(self.period):
            self._sync()

    def _sync(self):
        for pattern in self.patterns:
            sync(self.kept, pattern)

    def __exit__(self, *exc):
        if self.thread:
            self.stop.set()
            self.thread.join()
            self._sync()
        return False

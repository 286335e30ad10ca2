"""What every result record says about where it came from: the source state and the machine.
Shared by bench/perf_report.py, bench/timed_run.py, bench/reproduce.py and tests/fuzz/report.py."""
import os
import pathlib
import platform
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]


def git(*args):
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()


def source_state():
    """The commit, and whether tracked files differ from it (result files under docs/results are
    outputs, not sources, and do not count)."""
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/results")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(dirty)}


def machine():
    model = ""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cores": os.cpu_count(), "cpu": model, "memory_gib": round(mem, 1), "kernel": platform.release()}

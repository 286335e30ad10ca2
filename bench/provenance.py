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


def write_block(doc, begin, end, text, required=True):
    """Replaces what stands between the markers `begin` and `end` in the markdown file `doc` with
    `text` (the generated blocks of docs/performance.md). A file without the markers is an error
    that names them, or, with required=False, left as it is."""
    path = pathlib.Path(doc)
    body = path.read_text()
    if begin not in body or end not in body:
        if required:
            raise SystemExit(f"{doc} has no {begin} ... {end} block")
        return
    head, rest = body.split(begin, 1)
    path.write_text(head + begin + "\n" + text + "\n" + end + rest.split(end, 1)[1])

#!/usr/bin/python3
"""Reproductions of the seeds' claims, each from resumable `prunegym bench` runs to committed raw
files, their provenance, and tables generated from the raw files only.

    bench/reproduce.py EXPERIMENT [--jobs 2]      run (or resume) its grids, collect raw/, render
    bench/reproduce.py EXPERIMENT --render-only   regenerate the tables and plots from raw/

Experiments (one module each, bench/results_*.py, holding its grids, seeds and renderer):
  agents            DQN, Q, PPO against the uniform baseline on the default setup (results_agents.py)
  purl-convergence  PuRL's dense vs sparse rewards over 55 and 400 episodes (results_convergence.py)
  seed000           seed 000's Table 1 and Table 2 on the full MNIST (results_seed000.py)
  seed001           seed 001's iterative and one-shot lottery tickets on the full MNIST (results_seed001.py)
  seed003           seed 003's CNN tables (iterative, winning ticket, re-init) on the full MNIST
  purl-table1       PuRL's Table 1 (MDP ablations) and the seeds' rewards on LeNet-300-100 (results_table1.py)
  purl-table2       PuRL's 3-dim vs 108-dim state and PuRL vs uniform on ResNet-50 (results_table2.py)
  purl-table2-dense the dense ResNet-50 purl-table2 prunes, and its width by a declared rule (results_dense.py)

Runs land in runs/<grid>/ (resumable: rerun the same command after an interruption, in this or a
later session); finished runs are copied to docs/results/<experiment>/raw/<grid>/<variant>-s<seed>/
and every session's command, commit and wall time is appended to provenance.json. Experiments
marked seed-major run all variants of seed 0 first, then seed 1, ..., so an unfinished experiment
holds complete rows for the first seeds rather than all seeds of the first rows.
"""
import argparse
import datetime
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

from provenance import ROOT, machine, source_state  # bench/provenance.py
import claims  # noqa: E402  (bench/claims.py)
import checkpoints  # noqa: E402  (bench/checkpoints.py: pretraining state across sessions)
import partial_runs  # noqa: E402  (bench/partial_runs.py: unfinished bench runs across sessions)

CLI = os.environ.get("PRUNEGYM_CLI", str(ROOT / "build/bin/prunegym"))

import results_agents  # noqa: E402  (bench/ is on sys.path: this script's folder)
import results_convergence  # noqa: E402
import results_dense  # noqa: E402
import results_seed000  # noqa: E402
import results_seed001  # noqa: E402
import results_seed003  # noqa: E402
import results_table1  # noqa: E402
import results_table2  # noqa: E402

MODULES = {"agents": results_agents, "purl-convergence": results_convergence, "seed000": results_seed000,
           "seed001": results_seed001, "seed003": results_seed003, "purl-table1": results_table1,
           "purl-table2": results_table2, "purl-table2-dense": results_dense}
EXPERIMENTS = {name: dict(m.EXPERIMENT, name=name, render=m.render) for name, m in MODULES.items()}
# What each experiment reproduces (the index's first column; the experiment's README has the detail).
CLAIMS = {
    "purl-convergence": "PuRL: dense rewards converge faster than sparse ones (55 against 400 episodes)",
    "seed000": "seed 000: Table 1 (13 Q-updates and the lottery-ticket loop), Table 2 (per-digit accuracy), full MNIST",
    "seed001": "seed 001: winning tickets, re-init and random masks, iterative and one-shot, LeNet-300-100, full MNIST",
    "seed003": "seed 003: its CNN's iterative, winning-ticket and re-init tables, full MNIST",
    "agents": "the built-in agents against PuRL's uniform baseline on the default setup",
    "purl-table1": "PuRL Table 1 (dense/sparse rewards, magnitude target, rewards 2/3, action step, state) and "
                   "the seeds' rewards, LeNet-300-100",
    "purl-table2": "PuRL Table 2 (108-dim against 3-dim state) and PuRL against a uniform threshold, ResNet-50",
    "purl-table2-dense": "the dense ResNet-50 purl-table2 prunes: plausible on Fashion-MNIST, and its width",
}
INDEX = ROOT / "docs/results/README.md"


# --------------------------------------------------------------------------------------------
# Running and collecting


THREADS = None  # --threads: LibTorch threads per run (default: cores / jobs)


def bench_cmd(grid, seeds, jobs):
    return [CLI, "bench", "--grid", str(ROOT / "configs/bench" / f"{grid}.json"), "--out", str(ROOT / "runs" / grid),
            "--jobs", str(jobs), "--seeds", str(seeds)] + (["--threads", str(THREADS)] if THREADS else [])


def threads_per_run(jobs):
    return THREADS or max(1, (os.cpu_count() or 2) // jobs)


def planned_runs(grid, seeds):
    """The run folders (names under runs/<grid>/runs/) that the grid's current configs give: a
    run whose config changed has a new name, so stale results are never collected or restored."""
    proc = subprocess.run(bench_cmd(grid, seeds, 1) + ["--dry-run"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"prunegym bench --dry-run failed:\n{proc.stderr}")
    return {pathlib.Path(line.split()[1]).name for line in (proc.stdout + proc.stderr).splitlines()
            if line.startswith(("todo ", "cached "))}


def restore(exp, grid, plan):
    """Puts the committed raw files of finished runs back where the bench looks for them, so a
    fresh clone resumes instead of recomputing (raw/ keeps each run's folder name in origin.txt)."""
    restored = 0
    grid_raw = exp["out"] / "raw" / grid
    for run in sorted(grid_raw.iterdir()) if grid_raw.is_dir() else []:
        origin = run / "origin.txt"
        if not origin.exists() or origin.read_text().strip() not in plan:
            continue
        dest = ROOT / "runs" / grid / "runs" / origin.read_text().strip()
        if (dest / "summary.json").exists():
            continue
        dest.mkdir(parents=True, exist_ok=True)
        for f in run.iterdir():
            if f.name != "origin.txt":
                shutil.copy(f, dest / f.name)
        restored += 1
    if restored:
        print(f"restored {restored} finished runs of {grid} from {grid_raw.relative_to(ROOT)}", file=sys.stderr)


def run_bench(grid, seeds, jobs, experiment):
    """One `prunegym bench` over the first `seeds` seeds of a grid (resuming whatever is unfinished);
    returns this session's record (with the hashes of the experiment's declared rules, taken before
    the runs), or None when everything was cached."""
    rules = claims.hashes(experiment)
    out = ROOT / "runs" / grid
    cmd = bench_cmd(grid, seeds, jobs)
    print("==>", " ".join(cmd), file=sys.stderr, flush=True)
    state = source_state()  # what the binaries and scripts were at the start
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=run_env(threads_per_run(jobs)),
                            stderr=subprocess.PIPE, text=True)
    tail = []
    for line in proc.stderr:  # the bench's progress, shown live and kept for the cache check
        sys.stderr.write(line)
        tail = (tail + [line])[-200:]
    failed = proc.wait() != 0
    if not failed and any(", 0 to run" in line for line in tail):
        return None  # everything was cached: no compute in this session
    return {**state, "claims": rules, "failed": failed, "grid": f"configs/bench/{grid}.json", "out": str(out.relative_to(ROOT)), "seeds": seeds,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join(["prunegym"] + cmd[1:]).replace(str(ROOT) + "/", ""),
            "wall_seconds": round(time.time() - t0, 1)}


def run_and_collect(exp, jobs, max_seeds, command):
    """Runs (or resumes) every grid of the experiment, collecting after each bench so that an
    interrupted session keeps what it finished, with its provenance."""
    seeds = min(exp["seeds"], max_seeds or exp["seeds"])
    steps = [(grid, k) for k in range(1, seeds + 1) for grid in exp["grids"]] if exp.get("seed_major") else \
        [(grid, seeds) for grid in exp["grids"]]
    plans = {grid: planned_runs(grid, exp["seeds"]) for grid in exp["grids"]}
    for grid in exp["grids"]:
        restore(exp, grid, plans[grid])
    with checkpoints.Keeper(exp):  # e.g. the committed dense model the grid prunes
        for grid, k in steps:
            with partial_runs.Keeper(exp, grid, ROOT):  # unfinished runs across sessions
                session = run_bench(grid, k, jobs, exp["name"])
            # Runs that finished are kept (with the session's wall time) even when others failed.
            collect(exp, [session] if session else [], command, plans)
            exp["render"](exp["out"])  # the tables as far as the runs go, after every bench
            if session and session["failed"]:
                sys.exit("prunegym bench failed; the finished runs are collected; rerun the same command to resume")


def run_commands(exp, name, jobs, max_seeds, command):
    """Experiments made of resumable `prunegym` invocations other than bench grids (e.g. `prunegym
    lottery`): exp["runs"](seed) lists (run name, arguments); each run writes
    runs/<experiment>/<run>-s<seed>/ and is finished when exp["done_file"] is there. A run whose
    committed raw copy holds the same arguments and config text is not run again. Runs start in
    seed-major order and `jobs` at a time across seeds (no core idles at the end of a seed); every
    finished run is collected at once, with this session's record, so an interruption keeps it."""
    import concurrent.futures
    import threading
    seeds = min(exp["seeds"], max_seeds or exp["seeds"])
    threads = threads_per_run(jobs)
    todo = []
    for seed in range(seeds):
        for run, args in exp["runs"](seed):
            key = run_key(args)
            origin = exp["out"] / "raw" / f"{run}-s{seed}" / "origin.json"
            if origin.exists() and json.loads(origin.read_text()) == key:
                continue
            todo.append((seed, run, args, key))
    if not todo:
        print(f"{name}: every run of seeds 0-{seeds - 1} is committed and current; nothing to run", file=sys.stderr)
        return
    t0 = time.time()
    session = {**source_state(), "id": datetime.datetime.now(datetime.timezone.utc).isoformat(),
               "claims": claims.hashes(name), "seeds": sorted({seed for seed, *_ in todo}), "runs": 0, "command": command,
               "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "wall_seconds": 0.0}
    lock = threading.Lock()

    def one(item):
        seed, run, args, key = item
        out = ROOT / "runs" / name / f"{run}-s{seed}"
        out.mkdir(parents=True, exist_ok=True)
        argv = [CLI, *args, "--out", str(out), "--threads", str(threads)]
        started = time.time()
        with open(out / "log.txt", "a") as log:
            proc = subprocess.run(argv, cwd=ROOT, stdout=log, stderr=log, env=run_env(threads))
        if proc.returncode != 0:
            return f"{run}-s{seed} failed ({proc.returncode}): see {out / 'log.txt'}"
        (out / "origin.json").write_text(json.dumps(key, indent=2) + "\n")
        with lock:  # collect it now, so an interrupted session keeps it with its provenance
            session["runs"] += 1
            session["wall_seconds"] = round(time.time() - t0, 1)
            collect_commands(exp, name, [session], only=out)
            exp["render"](exp["out"])
            render_index(INDEX)
        return f"{run}-s{seed} finished in {(time.time() - started) / 60:.1f} min"

    print(f"==> {name}: {len(todo)} runs over seeds {session['seeds']}, {jobs} at a time ({threads} threads each)",
          file=sys.stderr, flush=True)
    failures = []
    with checkpoints.Keeper(exp), concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        # Report each run when it ends (not in submission order, which hid short runs behind long ones).
        for future in concurrent.futures.as_completed([pool.submit(one, item) for item in todo]):
            message = future.result()
            print("   ", message, file=sys.stderr, flush=True)
            if "failed" in message:
                failures.append(message)
    if failures:
        sys.exit("some runs failed; rerun the same command to retry them")


def run_env(threads):
    """The environment of every run: its OpenMP threads, and 256 MiB of glibc heap headroom
    (MALLOC_TOP_PAD_) unless set already. With glibc's defaults seed 003's CNN grows and trims the
    heap around every batch; bench/heap_pad.py measures the difference (record and table in
    docs/results/heap-pad/)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    env.setdefault("MALLOC_TOP_PAD_", str(256 << 20))
    return env


def run_key(args):
    """What decides whether a committed run is still current: its arguments and its config's text."""
    key = {"args": args}
    if "--config" in args:
        key["config_text"] = (ROOT / args[args.index("--config") + 1]).read_text()
    return key


def collect_commands(exp, name, sessions, only=None):
    """Copies finished runs (those with origin.json and the done file) into raw/ and records the
    session; `only` (a run folder) copies just that one, the run that has just finished."""
    raw = exp["out"] / "raw"
    runs_dir = ROOT / "runs" / name
    for run in [only] if only else sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
        if not (run / exp["done_file"]).exists() or not (run / "origin.json").exists():
            continue
        dest = raw / run.name
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for f in exp["files"] + ("origin.json",):
            shutil.copy(run / f, dest / f)
    write_provenance(exp, sessions, sessions[-1]["command"] if sessions else "")


def collect(exp, sessions, command, plans):
    """Copies each finished run of the current plan into the results folder (with its folder name
    in origin.txt) and writes provenance.json."""
    out = exp["out"]
    raw = out / "raw"
    if raw.exists():
        shutil.rmtree(raw)
    for grid in exp["grids"]:
        runs_dir = ROOT / "runs" / grid / "runs"
        for run in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
            if not (run / "summary.json").exists() or run.name not in plans[grid]:
                continue
            summary = json.loads((run / "summary.json").read_text())
            variant = run.name.rsplit("-s", 1)[0]
            dest = raw / grid / f"{variant}-s{summary['seed']}"
            dest.mkdir(parents=True)
            for name in exp["files"]:
                shutil.copy(run / name, dest / name)
            if "run.json" in exp["files"]:  # enough to restore the run in a fresh clone
                (dest / "origin.txt").write_text(run.name + "\n")
            shutil.rmtree(out / "partial" / grid / run.name, ignore_errors=True)  # collected: no copy needed
    write_provenance(exp, sessions, command)


def supersede(exp):
    """--fresh: the recorded sessions belong to runs this rerun replaces; keep them, marked, with the
    commit whose docs/results still hold those runs."""
    path = exp["out"] / "provenance.json"
    if not path.exists():
        return
    prov = json.loads(path.read_text())
    if prov.get("sessions"):
        commit = source_state()["commit"]
        prov.setdefault("superseded", []).append(
            {"sessions": prov["sessions"], "runs_at_commit": commit,
             "note": f"runs of an earlier config or rule set; their raw/ and tables are in git at {commit[:10]}"})
        prov["sessions"] = []
        path.write_text(json.dumps(prov, indent=2) + "\n")


def write_provenance(exp, sessions, command):
    out = exp["out"]
    out.mkdir(parents=True, exist_ok=True)
    earlier = []
    if (out / "provenance.json").exists():  # a run resumed over several sessions keeps every session's record
        earlier = json.loads((out / "provenance.json").read_text()).get("sessions", [])
    ids = {s["id"] for s in sessions if "id" in s}  # a session recorded again as it goes replaces its record
    earlier = [s for s in earlier if s.get("id") not in ids]
    latest = (earlier + sessions)[-1] if earlier + sessions else dict(source_state(), dirty=True)
    provenance = {
        "command": command, "commit": latest["commit"], "dirty": latest["dirty"],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
        "seeds": list(range(exp["seeds"])), "sessions": earlier + sessions, **exp["provenance"],
    }
    if (out / "provenance.json").exists():
        superseded = json.loads((out / "provenance.json").read_text()).get("superseded")
        if superseded:
            provenance["superseded"] = superseded
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# The index: how far each experiment has run, from its raw/ and provenance.json only


def load_jsonc(path):
    """A JSON file with // comments (the configs' format): comments outside strings are dropped."""
    out, in_string, i, text = [], False, 0, pathlib.Path(path).read_text()
    while i < len(text):
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return json.loads("".join(out))


def planned_names(exp, seed):
    """The raw/ folder names that one seed of the experiment produces when it is complete."""
    if "runs" in exp:
        return {f"{run}-s{seed}" for run, _ in exp["runs"](seed)}
    return {f"{grid}/{v['name']}-s{seed}" for grid in exp["grids"]
            for v in load_jsonc(ROOT / "configs/bench" / f"{grid}.json")["variants"]}


def finished_names(exp):
    raw = exp["out"] / "raw"
    if not raw.is_dir():
        return set()
    if "runs" in exp:
        return {d.name for d in raw.iterdir() if d.is_dir()}
    return {f"{g.name}/{d.name}" for g in raw.iterdir() if g.is_dir() for d in g.iterdir() if d.is_dir()}


def status(exp):
    done = finished_names(exp)
    planned = [planned_names(exp, seed) for seed in range(exp["seeds"])]
    complete = [seed for seed, names in enumerate(planned) if names <= done]
    sessions = []
    if (exp["out"] / "provenance.json").exists():
        sessions = json.loads((exp["out"] / "provenance.json").read_text()).get("sessions", [])
    return {"seeds": exp["seeds"], "complete": complete, "runs": len(done & set().union(*planned)),
            "planned": sum(len(p) for p in planned), "sessions": len(sessions),
            "hours": sum(s["wall_seconds"] for s in sessions) / 3600,
            "last": sessions[-1] if sessions else None}


def render_index(path):
    lines = ["# Reproductions: how far each has run", "",
             "Generated by `bench/reproduce.py --index` from each experiment's `raw/` and `provenance.json`. "
             "Do not edit by hand. A seed counts as complete when every run it needs is in `raw/`; the "
             "experiment's README says which verdicts wait for more seeds. `bench/reproduce.py EXPERIMENT` "
             "resumes an unfinished one (a fresh clone restores the committed runs first).", "",
             "| experiment | reproduces | seeds complete | runs in raw/ | sessions recorded (wall time) | last session |",
             "|---|---|---|---|---|---|"]
    for name in sorted(EXPERIMENTS):
        exp, st = EXPERIMENTS[name], status(EXPERIMENTS[name])
        folder = exp["out"].relative_to(INDEX.parent)  # links as they are from docs/results/README.md
        link = f"[{name}]({folder}/README.md)" if (exp["out"] / "README.md").exists() else f"{name} (not run yet)"
        seeds = (f"{len(st['complete'])} of {st['seeds']}" +
                 (f" ({', '.join(map(str, st['complete']))})" if 0 < len(st["complete"]) < st["seeds"] else ""))
        last = (f"{st['last']['date'][:10]}, `{st['last']['commit'][:10]}`" if st["last"] else "-")
        lines.append(f"| {link} | {CLAIMS[name]} | {seeds} | {st['runs']} of {st['planned']} | "
                     f"{st['sessions']} ({st['hours']:.1f} h) | {last} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", nargs="?", choices=sorted(EXPERIMENTS))
    ap.add_argument("--index", action="store_true", help="only regenerate docs/results/README.md, the status of "
                    "every experiment (with --out DIR: DIR/README.md)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, help="LibTorch threads per run (default: cores / jobs); e.g. --jobs 1 "
                    "--threads 1 beside another experiment")
    ap.add_argument("--max-seeds", type=int, help="run only the first N seeds in this session (resume later without it)")
    ap.add_argument("--render-only", action="store_true", help="regenerate the tables and plots from raw/")
    ap.add_argument("--fresh", action="store_true", help="start the experiment's record anew (a rerun after its "
                    "configs or rules changed): earlier sessions move to provenance.json's 'superseded' with the "
                    "commit that holds their runs, and their raw/ runs are replaced as the new ones finish")
    ap.add_argument("--out", help="render into this folder (raw/, partial/ and provenance.json are read from the "
                    "experiment's)")
    a = ap.parse_args()
    if a.index:
        render_index(pathlib.Path(a.out) / "README.md" if a.out else INDEX)
        return
    if not a.experiment:
        ap.error("name an experiment (or --index)")
    exp = EXPERIMENTS[a.experiment]
    global THREADS
    THREADS = a.threads
    if not a.render_only:
        if not pathlib.Path(CLI).exists():
            sys.exit(f"{CLI} is missing: build first (scripts/demo or cmake --build build), or set PRUNEGYM_CLI")
        command = " ".join(["bench/reproduce.py", a.experiment, "--jobs", str(a.jobs)]
                           + (["--threads", str(a.threads)] if a.threads else [])
                           + (["--max-seeds", str(a.max_seeds)] if a.max_seeds else []))
        if a.fresh:
            supersede(exp)
        if "runs" in exp:
            run_commands(exp, a.experiment, a.jobs, a.max_seeds, command)
        else:
            run_and_collect(exp, a.jobs, a.max_seeds, command)
    out = exp["out"]
    if a.out:
        target = pathlib.Path(a.out)
        target.mkdir(parents=True, exist_ok=True)
        for name in ("raw", "provenance.json", "partial"):  # what a page is rendered from
            src = out / name
            if not src.exists() or (target / name).exists() or (target / name).is_symlink():
                continue
            (target / name).symlink_to(src.resolve(), target_is_directory=src.is_dir())
        out = target
    exp["render"](out)
    print(f"wrote {out / 'README.md'}", file=sys.stderr)
    if not a.out:
        render_index(INDEX)


if __name__ == "__main__":
    main()

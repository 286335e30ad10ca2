#!/usr/bin/python3
"""Draws a prunegym lottery.csv: test accuracy and early-stop iteration against remaining weights."""

import csv
import sys


def main(argv):
    if len(argv) != 3:
        print("usage: plot_lottery.py lottery.csv lottery.png", file=sys.stderr)
        return 2
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (apt-get install python3-matplotlib)", file=sys.stderr)
        return 3
    with open(argv[1], newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        print("no rows in " + argv[1], file=sys.stderr)
        return 1
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7.5), sharex=True)
    for name in strategies:
        mine = sorted((r for r in rows if r["strategy"] == name), key=lambda r: int(r["round"]))
        remaining = [float(r["remaining_pct"]) for r in mine]
        top.plot(remaining, [100 * float(r["early_stop_test_accuracy"]) for r in mine], marker="o", label=name)
        bottom.plot(remaining, [int(r["early_stop_iteration"]) for r in mine], marker="o", label=name)
    top.set_ylabel("test accuracy at early stop (%)")
    bottom.set_ylabel("early-stop iteration")
    bottom.set_xlabel("weights remaining (%)")
    for ax in (top, bottom):
        ax.set_xscale("log")
        ax.invert_xaxis()  # pruning goes left to right
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="best", fontsize=8)
    fig.suptitle("lottery-ticket rounds")
    fig.tight_layout()
    fig.savefig(argv[2], dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

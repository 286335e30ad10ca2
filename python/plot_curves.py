#!/usr/bin/python3
"""Draws reward, accuracy and sparsity per training episode from a prunegym episodes.csv."""

import csv
import sys


def main(argv):
    if len(argv) != 3:
        print("usage: plot_curves.py episodes.csv curves.png", file=sys.stderr)
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
        print("no episodes in " + argv[1], file=sys.stderr)
        return 1
    episode = [int(r["episode"]) + 1 for r in rows]
    series = [
        ("total reward", [float(r["total_reward"]) for r in rows], None),
        ("accuracy (%)", [100 * float(r["accuracy"]) for r in rows], None),
        ("sparsity (%)", [100 * float(r["sparsity"]) for r in rows], None),
    ]
    fig, axes = plt.subplots(3, 1, figsize=(7, 7.5), sharex=True)
    for ax, (label, values, _) in zip(axes, series):
        ax.plot(episode, values, marker=".", linewidth=1)
        if len(values) >= 5:
            k = 5
            smooth = [sum(values[max(0, i - k + 1): i + 1]) / len(values[max(0, i - k + 1): i + 1]) for i in range(len(values))]
            ax.plot(episode, smooth, linewidth=2, alpha=0.7, label="mean of last 5")
            ax.legend(loc="best", fontsize=8)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("episode")
    fig.suptitle("prunegym training curves")
    fig.tight_layout()
    fig.savefig(argv[2], dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

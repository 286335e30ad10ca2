#!/usr/bin/python3
"""Plots of a prunegym bench: learning curves per variant and the accuracy/sparsity Pareto front.

usage: plot_bench.py results.json OUT_DIR   (writes OUT_DIR/curves.png and OUT_DIR/pareto.png)
"""

import json
import pathlib
import sys


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (apt-get install python3-matplotlib)", file=sys.stderr)
        return 3
    data = json.loads(pathlib.Path(argv[1]).read_text())
    out = pathlib.Path(argv[2])
    variants = data["variants"]
    if not variants:
        print("no finished runs in " + argv[1], file=sys.stderr)
        return 1

    fig, ax = plt.subplots(figsize=(8, 5))
    for v in variants:
        mean, se = v["curve"]["mean"], v["curve"]["se"]
        episodes = list(range(1, len(mean) + 1))
        line, = ax.plot(episodes, mean, label=f"{v['name']} (n={v['runs']})", linewidth=1.5)
        ax.fill_between(episodes, [m - s for m, s in zip(mean, se)], [m + s for m, s in zip(mean, se)],
                        color=line.get_color(), alpha=0.2)
    ax.set_xlabel("episode")
    ax.set_ylabel("total reward (mean over seeds, band +-1 SE)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title("learning curves")
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 5.5))
    front = []
    for v in variants:
        xs = [100 * p["sparsity"] for p in v["points"]]
        ys = [100 * p["accuracy"] for p in v["points"]]
        pts = ax.scatter(xs, ys, s=14, alpha=0.35)
        color = pts.get_facecolor()[0]
        mx, my = 100 * v["sparsity"]["mean"], 100 * v["accuracy"]["mean"]
        ax.errorbar(mx, my, xerr=100 * v["sparsity"]["se"], yerr=100 * v["accuracy"]["se"], fmt="o", color=color,
                    markersize=7, capsize=3, label=v["name"] + (" *" if v["pareto"] else ""))
        if v["pareto"]:
            front.append((mx, my))
    front.sort()
    if len(front) > 1:
        ax.plot([p[0] for p in front], [p[1] for p in front], "k--", linewidth=1, label="Pareto front")
    for x, y in front:
        ax.scatter([x], [y], s=160, facecolors="none", edgecolors="k")
    ax.set_xlabel("sparsity (%)")
    ax.set_ylabel("test accuracy after fine-tuning (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title("final accuracy against sparsity (variant means +-1 SE; * Pareto front)")
    fig.tight_layout()
    fig.savefig(out / "pareto.png", dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

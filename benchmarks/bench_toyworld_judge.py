"""Shot-judge accuracy on generated toy-world panels: clean and degraded, at several sizes, with 3x3 matrices.

    python benchmarks/bench_toyworld_judge.py --n 300 --sizes 64 256
    python benchmarks/bench_toyworld_judge.py --tune --n 60 --seed 77    # how judge.BIAS / BODY_PENALTY were set
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lib_storyboard.toyworld.degrade import DEGRADATIONS  # noqa: E402
from lib_storyboard.toyworld import judge as J  # noqa: E402
from lib_storyboard.toyworld.judge import judge_shot  # noqa: E402
from lib_storyboard.toyworld.sketches import SHOT_KEYS, draw_panel, panel_seed  # noqa: E402


def matrix_text(m: dict) -> str:
    cols = list(SHOT_KEYS) + ["none"]
    lines = ["true\\judged " + " ".join(f"{c:>5s}" for c in cols)]
    for t in SHOT_KEYS:
        lines.append(f"{t:>12s} " + " ".join(f"{m.get((t, c), 0):5d}" for c in cols))
    return "\n".join(lines)


def run(size: int, n: int, seed: int, kinds: list[str]) -> None:
    panels = [draw_panel(panel_seed(seed, k), SHOT_KEYS[k % 3], size) for k in range(3 * n)]
    for kind in kinds:
        m: dict = {}
        figures = 0
        t0 = time.perf_counter()
        for k, p in enumerate(panels):
            img = p.image if kind == "clean" else DEGRADATIONS[kind](p.image, seed=k)
            j = judge_shot(img)
            key = (p.shot, j.shot or "none")
            m[key] = m.get(key, 0) + 1
            figures += j.figure
        dt = (time.perf_counter() - t0) / len(panels)
        acc = sum(m.get((s, s), 0) for s in SHOT_KEYS) / len(panels)
        print(f"\n[{size}px, {kind}] accuracy {acc * 100:.1f}% over {len(panels)} panels, "
              f"clear figure in {figures / len(panels) * 100:.1f}%, {dt * 1000:.0f} ms/panel")
        print(matrix_text(m))


def tune(sizes: list[int], n: int, seed: int, kinds: list[str]) -> None:
    """Grid-search the framing priors and the body penalty on panels of another seed than the benchmark's."""
    import itertools

    import numpy as np

    rows = []                      # (true index, kind index, per shot: score or nan, agrees)
    for size in sizes:
        for k in range(3 * n):
            p = draw_panel(panel_seed(seed, k), SHOT_KEYS[k % 3], size)
            for ki, kind in enumerate(kinds):
                img = p.image if kind == "clean" else DEGRADATIONS[kind](p.image, seed=k)
                ink, contrast = J.ink_map(img)
                lines = J.centre_lines(ink, contrast)
                best = J.hypotheses(lines, J.head_candidates(lines))
                feats = []
                for s in SHOT_KEYS:
                    feats += [best[s].score, float(best[s].body_agrees)] if s in best else [np.nan, 0.0]
                rows.append([k % 3, ki] + feats)
    a = np.array(rows)
    results = []
    grid = np.arange(0, 0.31, 0.02)
    for bcu, bms, pen in itertools.product(grid, grid, np.arange(0, 0.41, 0.05)):
        bias = np.array([bcu, bms, 0.0])
        sc = np.stack([a[:, 2 + 2 * i] + bias[i] - pen * (1 - a[:, 3 + 2 * i]) for i in range(3)], 1)
        pred = np.argmax(np.nan_to_num(sc, nan=-9), 1)
        ok = pred == a[:, 0]
        per_kind = [ok[a[:, 1] == ki].mean() for ki in range(len(kinds))]
        results.append((min(ok[a[:, 1] == 0].mean(), 0.995) + np.mean(per_kind), bcu, bms, pen, per_kind))
    results.sort(key=lambda t: -t[0])
    for r in results[:10]:
        print(f"bias cu {r[1]:.2f} ms {r[2]:.2f} penalty {r[3]:.2f}: " +
              " ".join(f"{k} {v * 100:.1f}" for k, v in zip(kinds, r[4])))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="panels per shot")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--kinds", nargs="+", default=["clean"] + list(DEGRADATIONS))
    ap.add_argument("--tune", action="store_true", help="search judge.BIAS and judge.BODY_PENALTY instead")
    a = ap.parse_args()
    if a.tune:
        return tune(a.sizes, a.n, a.seed, a.kinds)
    for size in a.sizes:
        run(size, a.n, a.seed, a.kinds)


if __name__ == "__main__":
    main()

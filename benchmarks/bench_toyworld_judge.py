"""Shot-judge accuracy on generated toy-world panels: clean and degraded, at several sizes, with 3x3 matrices.

    python benchmarks/bench_toyworld_judge.py --n 300 --sizes 64 256
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lib_storyboard.toyworld.degrade import DEGRADATIONS  # noqa: E402
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
        t0 = time.perf_counter()
        for k, p in enumerate(panels):
            img = p.image if kind == "clean" else DEGRADATIONS[kind](p.image, seed=k)
            j = judge_shot(img)
            key = (p.shot, j.shot or "none")
            m[key] = m.get(key, 0) + 1
        dt = (time.perf_counter() - t0) / len(panels)
        acc = sum(m.get((s, s), 0) for s in SHOT_KEYS) / len(panels)
        print(f"\n[{size}px, {kind}] accuracy {acc * 100:.1f}% over {len(panels)} panels, {dt * 1000:.0f} ms/panel")
        print(matrix_text(m))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="panels per shot")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--kinds", nargs="+", default=["clean"] + list(DEGRADATIONS))
    a = ap.parse_args()
    for size in a.sizes:
        run(size, a.n, a.seed, a.kinds)


if __name__ == "__main__":
    main()

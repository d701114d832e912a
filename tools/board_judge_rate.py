"""How often the shot judge reads a board's panels in their scene's framing: boards drawn by the `board` command's
path (diffusers, the toy base) with a trained storyboard model, several base seeds, the rate per shot printed.

    .venv/bin/python tools/board_judge_rate.py --storyboard storyboard-demo/Lora/demo.safetensors [--scenes FILE]
        [--boards 5] [--seed-policy per_panel]

Without --scenes it draws the demo's nine-scene list. Compare with the demo's "generated panels" figure (the
proof's rate: the same judge on the same model's panels drawn with each token).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    import torch

    from lib_storyboard.adapters.diffusers_sd15 import load_single_file
    from lib_storyboard.board.draw import diffusers_drawer
    from lib_storyboard.board.options import BoardOptions
    from lib_storyboard.board.scenes import Scene, SceneList, read_scenes
    from lib_storyboard.board.writer import board_images, load_board, write_board
    from lib_storyboard.demo import DEMO_SCENES
    from lib_storyboard.models import toybase_path
    from lib_storyboard.toyworld.judge import judge_shot
    from lib_storyboard.toyworld.sketches import tags_and_caption

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--storyboard", required=True)
    ap.add_argument("--scenes")
    ap.add_argument("--boards", type=int, default=5)
    ap.add_argument("--seed-policy", default="per_panel", choices=["fixed", "per_panel"])
    args = ap.parse_args()
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    adapter = load_single_file(toybase_path())
    counts = {k: [0, 0] for k in ("cu", "ms", "fs")}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as out:
        for b in range(args.boards):
            scenes = read_scenes(args.scenes) if args.scenes else SceneList(tuple(
                Scene(i + 1, shot, tags_and_caption(b * 7919 + 31 * i)[1], line)
                for i, (shot, line) in enumerate(DEMO_SCENES)))
            options = BoardOptions(seed=1000 * b + 500, seed_policy=args.seed_policy, width=64, height=64, cfg=2.0)
            with diffusers_drawer(adapter, options, args.storyboard) as draw:
                files = write_board(out, f"b{b}", scenes, options, draw)
            board = load_board(files.folder)
            for plan, image in zip(board.plans(), board_images(files.folder, board)):
                if plan.shot:
                    j = judge_shot(image)
                    counts[plan.shot][0] += bool(j.figure and j.shot == plan.shot)
                    counts[plan.shot][1] += 1
    right, total = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
    for k, (ok, n) in counts.items():
        print(f"  {k}: {ok}/{n}")
    print(f"board panels judged in their scene's framing: {right}/{total} = {right / max(1, total):.0%} "
          f"({args.boards} boards, {time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

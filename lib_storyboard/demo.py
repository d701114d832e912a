"""`python -m lib_storyboard demo`: the whole pipeline on built-in defaults, on any machine, CPU included.

Writes a labelled sample set of procedural storyboard sketches, trains the three shot tokens and a style LoRA on
the shipped toy-world base, draws a storyboard sheet (one row per token) from the written files and judges each
drawn panel's shot; prints the per-token accuracy beside the untrained tokens' (the base's chance level). It ends
as a user's session would: a nine-panel board from a scene list (board.png, board.pdf, one PNG per panel), each
panel's framing read by the same judge.
"""
from __future__ import annotations

import json
import os
import time

import torch


def _base_model():
    """The shipped toy-world base when present; otherwise tiny random SD1.5-architecture parts (plumbing only)."""
    from .models import toybase_path

    path = toybase_path()
    if path:
        from .adapters.diffusers_sd15 import load_single_file
        return load_single_file(path), "toy-world base", True
    from .adapters.diffusers_sd15 import DiffusersSD15
    from .models.tiny import tiny_components
    return (DiffusersSD15.from_components(tiny_components(seed=0)),
            "tiny random base (the toy-world base is missing from this copy: figures will not be judged)", False)


# Fewer steps than the benchmark's 500 and no held-out classifier (the benchmark and the CI test run it) keep the
# demo within two minutes on two CPU cores; twice the benchmark's sketches per shot make up for the shorter run.
DEMO_STEPS = 300
DEMO_PER_SHOT = 48


def run_demo(out: str, steps: int | None = None, seed: int = 0, per_token: int = 8) -> int:
    from . import shots
    from .toyworld.proof import train_and_measure
    from .training.outputs import OutputPaths
    from .training.preview import grid

    t0 = time.time()
    # Half the cores: this model's ops are tiny, and on small machines more threads spin more than they compute
    # (measured: 2 threads on 2 cores ran the demo 25 % slower than 1).
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    adapter, base, real = _base_model()
    n_per_shot = DEMO_PER_SHOT
    print(f"base model: {base}; training set: {3 * n_per_shot} sketches, {n_per_shot} per shot, "
          f"{steps or DEMO_STEPS} steps", flush=True)
    last = [0.0]

    def on_event(e):
        if e.kind == "step" and (e.step % 50 == 0 or e.step == e.total) and time.time() - last[0] > 1:
            last[0] = time.time()
            print(f"  step {e.step}/{e.total} loss {e.loss:.4f}  {time.time() - t0:.0f}s", flush=True)

    r = train_and_measure(adapter, out, seed=seed, n_per_shot=n_per_shot, heldout_per_shot=0,
                          gen_per_shot=per_token, overrides={"max_steps": steps or DEMO_STEPS},
                          on_event=on_event, name="demo")
    rows = [im for s in shots.SHOTS for im in r["images"][s.key]]
    sheet = grid(rows, cols=per_token, labels=None)
    sheet_path = os.path.join(out, "storyboard-sheet.png")
    sheet.resize((sheet.width * 3, sheet.height * 3)).save(sheet_path)
    print(f"\ntrained {r['steps']} steps in {r['train_seconds']:.0f}s (loss {r['loss']:.4f}); "
          f"measured in {r['measure_seconds']:.0f}s")
    print("generated panels judged by the shot judge (trained tokens | untrained tokens):")
    for i, s in enumerate(shots.SHOTS):
        ok, base_ok = int(r["trained_gen"].matrix[i, i]), int(r["base_gen"].matrix[i, i])
        print(f"  {s.trigger:9s} drawn as {s.label}: {ok}/{per_token}   | {base_ok}/{per_token}")
    ok, base_ok = r["trained_gen"].accuracy, r["base_gen"].accuracy
    print(f"  all tokens: {ok:.0%}   | {base_ok:.0%} (chance 33%)")
    if not real:
        print("(random base: these figures only show the pipeline runs)")
    summary = {k: r[k].as_dict() for k in ("trained_gen", "base_gen")}
    with open(os.path.join(out, "demo-report.json"), "w", encoding="utf-8") as f:
        json.dump({"seed": seed, "steps": r["steps"], "seconds": round(time.time() - t0, 1), **summary}, f, indent=1)
    print(f"storyboard sheet (one row per token: {', '.join(s.trigger for s in shots.SHOTS)}): {sheet_path}")
    print(f"LoRA with bundled tokens: {OutputPaths.under(out).lora_file('demo')}")
    board = draw_demo_board(adapter, out, r["lora_file"], seed) if real else None
    if board:
        summary["board"] = board
        with open(os.path.join(out, "demo-report.json"), "w", encoding="utf-8") as f:
            json.dump({"seed": seed, "steps": r["steps"], "seconds": round(time.time() - t0, 1), **summary}, f,
                      indent=1)
    print(f"total {time.time() - t0:.0f}s")
    return 0


# A small scene list in the toy world's words (its sketches are of one person: a pose, hair, props, a setting).
DEMO_SCENES = [
    ("cu", 'She hears the knock. "Who is there?"'), ("ms", '"Just a minute!"'), ("fs", ""),
    ("ms", '"I brought the cups."'), ("cu", '"You came back."'), ("fs", '"Wait for me!"'),
    ("fs", ""), ("cu", '"It\'s raining."'), ("ms", '"Let\'s go."'),
]


def draw_demo_board(adapter, out: str, lora_file: str, seed: int) -> dict:
    """The board command's path on the demo's model: a nine-panel board from a scene list, each shot panel's
    framing read by the shot judge (the same reading as the generated panels above)."""
    from .board.draw import diffusers_drawer
    from .board.options import BoardOptions
    from .board.scenes import Scene, SceneList
    from .board.writer import board_images, load_board, write_board
    from .toyworld.judge import judge_shot
    from .toyworld.sketches import tags_and_caption

    scenes = SceneList(tuple(Scene(i + 1, shot, tags_and_caption(seed * 7919 + 31 * i)[1], line)
                             for i, (shot, line) in enumerate(DEMO_SCENES)))
    options = BoardOptions(title="Demo board", seed=seed * 1000 + 500, seed_policy="per_panel", width=64, height=64,
                           cfg=2.0, panel_width=128, font_size=13)
    with diffusers_drawer(adapter, options, lora_file) as draw:
        files = write_board(os.path.join(out, "boards"), "demo", scenes, options, draw,
                            {"checkpoint": "toybase", "storyboard": "demo", "sampler": "DDIM"})
    board = load_board(files.folder)
    judged = [judge_shot(im) for im in board_images(files.folder, board)]
    right = [j.figure and j.shot == plan.shot for plan, j in zip(board.plans(), judged)]
    print(f"board: {sum(right)}/{len(right)} panels judged in their scene's framing; {files.png} and {files.pdf}")
    return {"panels": len(right), "judged_right": sum(right), "png": files.png, "pdf": files.pdf}

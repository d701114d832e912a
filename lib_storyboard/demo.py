"""`python -m lib_storyboard demo`: the whole pipeline on built-in defaults, on any machine, CPU included.

Generates a labelled sample set of procedural storyboard sketches, trains the three shot tokens and a style LoRA,
draws a storyboard sheet (one row per token) and judges each drawn panel's shot.
"""
from __future__ import annotations

import os
import time

import torch


def _base_model():
    """The shipped toy-world base when present; otherwise tiny random SD1.5-architecture parts (plumbing only)."""
    from .models import toybase_path

    path = toybase_path()
    if path:
        from .adapters.diffusers_sd15 import load_single_file
        return load_single_file(path), "toy-world base"
    from .adapters.diffusers_sd15 import DiffusersSD15
    from .models.tiny import tiny_components
    return DiffusersSD15.from_components(tiny_components(seed=0)), "tiny random base (no toy-world base shipped yet)"


def run_demo(out: str, steps: int | None = None, seed: int = 0) -> int:
    from . import shots
    from .formats.lora_file import load_lora
    from .registry import token_vectors
    from .training.lora import LoraSet
    from .toyworld.judge import judge_shot
    from .toyworld.sketches import write_dataset
    from .training.config import TrainConfig
    from .training.outputs import OutputPaths
    from .training.preview import grid, sample
    from .training.trainer import Trainer

    t0 = time.time()
    # Half the cores: on small shared machines more threads than free cores makes torch spin, not compute.
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    data = os.path.join(out, "sample-set")
    write_dataset(data, 8, 64, seed)
    adapter, base = _base_model()
    print(f"base model: {base}; sample set: 24 sketches in {data}", flush=True)
    cfg = TrainConfig.from_dict(dict(name="demo", data_dir=data, resolution=64, batch_size=4, max_steps=steps or 100,
                                     vectors_per_token=2, rank=8, alpha=8.0, ti_lr=2e-2, unet_lr=1e-3, ti_frac=0.6,
                                     caption_dropout=0.1, seed=seed))
    last = [0.0]

    def on_event(e):
        if e.kind == "step" and (e.step % 25 == 0 or e.step == e.total) and time.time() - last[0] > 1:
            last[0] = time.time()
            print(f"  step {e.step}/{e.total} loss {e.loss:.4f}", flush=True)

    result = Trainer(adapter, cfg, OutputPaths.under(out), on_event=on_event).run()
    seeds = [seed * 100 + i for i in range(4)]
    # Draw from the written files, as a user of them would: tokens from the bundle, LoRA from its layers.
    lora_file = OutputPaths.under(out).lora_file("demo")
    vecs = token_vectors(lora_file)
    layers, _, _ = load_lora(lora_file)
    rows, correct = [], {}
    lora = LoraSet(adapter.lora_targets(False), cfg.rank, cfg.alpha)
    lora.load_weights({n: (l.down, l.up, l.alpha) for n, l in layers.items()})
    lora.attach()
    try:
        for s in shots.SHOTS:
            imgs = sample(adapter, [f"{s.trigger}, a sketch of a person"] * len(seeds), vecs, seeds, (64, 64),
                          steps=20, cfg=5.0)
            verdicts = [judge_shot(im).shot for im in imgs]
            correct[s.key] = sum(v == s.key for v in verdicts)
            rows += imgs
    finally:
        lora.detach()
    sheet = grid(rows, cols=len(seeds))
    sheet_path = os.path.join(out, "storyboard-sheet.png")
    sheet.resize((sheet.width * 2, sheet.height * 2)).save(sheet_path)
    print(f"trained {result.step} steps in {time.time() - t0:.0f}s (loss {result.loss:.4f})")
    for s in shots.SHOTS:
        print(f"  {s.trigger:9s} judged {s.label}: {correct[s.key]}/{len(seeds)}")
    print(f"storyboard sheet (one row per token): {sheet_path}")
    print(f"LoRA with bundled tokens: {OutputPaths.under(out).lora_file('demo')}")
    return 0

"""Proof of learning, full version: train the three shot tokens + LoRA on the shipped toy base, once per seed, and
print the 3x3 matrices of the diffusion-loss classifier on held-out panels and of the judged generated panels,
beside the untrained tokens' (the base's chance level).

    python benchmarks/bench_proof_of_learning.py --seeds 0 1 2 3 4
    python benchmarks/bench_proof_of_learning.py --seeds 0 --set max_steps=500 ti_lr=0.05 --sheet sheet.png

--set overrides the training recipe (lib_storyboard/toyworld/proof.py TOY_RECIPE), as key=JSON. --json writes
every figure. The CI test (tests/test_proof_of_learning.py) runs a shortened version of the same function.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--model", default=None, help="SD1.5 single-file checkpoint (default: the shipped toy base)")
    ap.add_argument("--per-shot", type=int, default=48, help="training panels per shot")
    ap.add_argument("--heldout", type=int, default=20, help="held-out panels per shot for the classifier (0: skip)")
    ap.add_argument("--generate", type=int, default=20, help="generated panels per token")
    ap.add_argument("--cfg", type=float, default=2.0, help="guidance scale of the generated panels")
    ap.add_argument("--sample-steps", type=int, default=20, help="sampling steps of the generated panels")
    ap.add_argument("--set", nargs="*", default=[], help="recipe overrides, key=JSON value")
    ap.add_argument("--no-baseline", action="store_true", help="skip the untrained-token measurements")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: half the cores)")
    ap.add_argument("--sheet", default=None, help="write the generated panels of the first seed here (PNG)")
    ap.add_argument("--json", default=None, help="write all figures here")
    ap.add_argument("--keep", default=None, help="keep each seed's dataset and outputs under this folder")
    a = ap.parse_args(argv)

    from lib_storyboard.adapters.diffusers_sd15 import load_single_file
    from lib_storyboard.models import toybase_path
    from lib_storyboard.toyworld.proof import TOY_RECIPE, Confusion, train_and_measure
    from lib_storyboard.training.preview import grid

    torch.set_num_threads(a.threads or max(1, (os.cpu_count() or 2) // 2))
    model = a.model or toybase_path()
    if not model:
        print("No toy base found; pass --model.", file=sys.stderr)
        return 2
    overrides = {}
    for kv in a.set:
        k, _, v = kv.partition("=")
        overrides[k] = json.loads(v)
    print(f"model {os.path.basename(model)}; recipe {dict(TOY_RECIPE, **overrides)}; "
          f"{a.per_shot} training panels per shot, {a.heldout} held-out per shot, {a.generate} generated per token",
          flush=True)
    adapter = load_single_file(model)
    runs = []
    for seed in a.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            work = os.path.join(a.keep, f"seed{seed}") if a.keep else tmp
            t0 = time.perf_counter()
            r = train_and_measure(adapter, work, seed=seed, n_per_shot=a.per_shot, heldout_per_shot=a.heldout,
                                  gen_per_shot=a.generate, overrides=overrides, baseline=not a.no_baseline,
                                  gen_cfg=a.cfg, gen_steps=a.sample_steps)
        print(f"\n== seed {seed}: trained {r['steps']} steps in {r['train_seconds']:.0f}s, measured in "
              f"{r['measure_seconds']:.0f}s (total {time.perf_counter() - t0:.0f}s)")
        if "trained_loss" in r:
            print(r["trained_loss"].format("(a) diffusion-loss classifier, trained tokens"))
        if "base_loss" in r:
            print(r["base_loss"].format("(a) diffusion-loss classifier, untrained tokens"))
        print(r["trained_gen"].format("(b) generated panels judged, trained tokens"))
        if "base_gen" in r:
            print(r["base_gen"].format("(b) generated panels judged, untrained tokens"))
        sys.stdout.flush()
        if a.sheet and seed == a.seeds[0]:
            rows = [im for k in ("cu", "ms", "fs") for im in r["images"][k][:8]]
            g = grid(rows, cols=min(8, a.generate))
            g.resize((g.width * 2, g.height * 2)).save(a.sheet)
        runs.append({k: (v.as_dict() if hasattr(v, "as_dict") else v) for k, v in r.items()
                     if k not in ("images", "base_images", "lora_file")})
    keys = [k for k in ("trained_loss", "base_loss", "trained_gen", "base_gen") if k in runs[0]]
    print("\n== over seeds", a.seeds)
    for k in keys:
        acc = np.array([r[k]["accuracy"] for r in runs])
        print(f"  {k:13s} mean {acc.mean():.1%}  min {acc.min():.1%}  max {acc.max():.1%}  "
              f"({', '.join(f'{x:.0%}' for x in acc)})")
    for k in keys:   # the matrices summed over seeds
        print(Confusion(np.sum([r[k]["matrix"] for r in runs], axis=0), tuple(runs[0][k]["columns"])).format(
            f"{k}, all seeds"))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"overrides": overrides, "runs": runs}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

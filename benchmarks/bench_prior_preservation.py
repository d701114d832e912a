"""Prior preservation on the toy world: the proof-of-learning figures and the base's drift, without and with the
DreamBooth prior loss, on the shipped toy base.

    python benchmarks/bench_prior_preservation.py --seeds 0 1 --weights 0 1

Per seed and prior weight: the shot tokens + LoRA trained with the proof's recipe (TOY_RECIPE), then (a) the
diffusion-loss classifier on held-out panels and (b) generated panels judged, as in bench_proof_of_learning.py;
then the drift: unseen scene captions *without* a trigger drawn by the base alone and with the trained LoRA
(same seeds), judged; "changed" is the share whose judged shot (or figure) changed, "pixels" the mean change.
Class images (per shot, from the shot's plain words) are drawn once per seed and shared by the weights.
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
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0], help="prior loss weights")
    ap.add_argument("--class-images", type=int, default=48, help="class images per shot")
    ap.add_argument("--heldout", type=int, default=10, help="held-out panels per shot for the classifier")
    ap.add_argument("--generate", type=int, default=10, help="generated panels per token")
    ap.add_argument("--drift-prompts", type=int, default=10, help="untriggered prompts, each drawn with 3 seeds")
    ap.add_argument("--set", nargs="*", default=[], help="recipe overrides, key=JSON value")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: half the cores)")
    ap.add_argument("--json", default=None, help="write all figures here")
    a = ap.parse_args(argv)

    from lib_storyboard.adapters.diffusers_sd15 import load_single_file
    from lib_storyboard.models import toybase_path
    from lib_storyboard.toyworld.proof import HELDOUT_SEED_OFFSET, prompt_drift, train_and_measure
    from lib_storyboard.toyworld.sketches import panel_seed, tags_and_caption

    torch.set_num_threads(a.threads or max(1, (os.cpu_count() or 2) // 2))
    adapter = load_single_file(toybase_path())
    extra = {k: json.loads(v) for k, _, v in (kv.partition("=") for kv in a.set)}
    rows = []
    for seed in a.seeds:
        # Scenes of another seed space than the training set and the proof's generated panels; no trigger.
        prompts = [tags_and_caption(panel_seed(seed + 11 + HELDOUT_SEED_OFFSET, k))[1]
                   for k in range(a.drift_prompts)]
        drift_prompts = [p for p in prompts for _ in range(3)]
        drift_seeds = [seed * 1000 + 500 + i for i in range(len(drift_prompts))]
        with tempfile.TemporaryDirectory() as work:
            for w in a.weights:
                overrides = {**extra, "prior_loss_weight": w, "class_images": a.class_images, "class_cfg": 2.0}
                t0 = time.perf_counter()
                r = train_and_measure(adapter, work, seed=seed, heldout_per_shot=a.heldout, gen_per_shot=a.generate,
                                      overrides=overrides, baseline=w == a.weights[0], name=f"prior{seed}w{w:g}")
                d = prompt_drift(adapter, r["lora_file"], drift_prompts, drift_seeds)
                row = {"seed": seed, "weight": w, "seconds": round(time.perf_counter() - t0),
                       "train_seconds": round(r["train_seconds"]), "classifier": r["trained_loss"].accuracy,
                       "generated": r["trained_gen"].accuracy, "drift": d}
                if "base_loss" in r:
                    row["base_classifier"], row["base_generated"] = r["base_loss"].accuracy, r["base_gen"].accuracy
                rows.append(row)
                print(f"seed {seed} weight {w:g}: classifier {row['classifier']:.0%}, generated "
                      f"{row['generated']:.0%}; untriggered prompts: judged shot changed {d['changed']:.0%}, "
                      f"pixels {d['pixel_change']:.3f}, before {d['before']}, after {d['after']} "
                      f"(train {row['train_seconds']} s, all {row['seconds']} s)", flush=True)
                if "base_classifier" in row:
                    print(f"  untrained tokens: classifier {row['base_classifier']:.0%}, generated "
                          f"{row['base_generated']:.0%}", flush=True)
    print("\nweight  classifier  generated  drift: shot changed  pixel change   (mean over seeds", a.seeds, ")")
    for w in a.weights:
        rs = [r for r in rows if r["weight"] == w]
        print(f"{w:6g}  {np.mean([r['classifier'] for r in rs]):10.0%}  {np.mean([r['generated'] for r in rs]):9.0%}"
              f"  {np.mean([r['drift']['changed'] for r in rs]):19.0%}  "
              f"{np.mean([r['drift']['pixel_change'] for r in rs]):12.3f}")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

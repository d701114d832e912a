"""Trainer overhead: one training step against a bare UNet forward+backward of the same batch, and VAE encodes per epoch
(counted at the adapter).

    python benchmarks/bench_training.py [--model sd15.safetensors] [--resolution 64] [--batch 4] [--steps 30]
                                        [--threads 1]

Without --model it uses the tiny real-architecture SD1.5 parts (random weights). Prints figures; asserts nothing.
"""
import argparse
import math
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lib_storyboard.adapters.diffusers_sd15 import DiffusersSD15, load_single_file  # noqa: E402
from lib_storyboard.models.tiny import tiny_components  # noqa: E402
from lib_storyboard.toyworld.sketches import write_dataset  # noqa: E402
from lib_storyboard.training.config import TrainConfig  # noqa: E402
from lib_storyboard.training.lora import LoraSet  # noqa: E402
from lib_storyboard.training.outputs import OutputPaths  # noqa: E402
from lib_storyboard.training.precision import decide_precision, load_dtype  # noqa: E402
from lib_storyboard.training.trainer import Trainer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--per-shot", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (tiny models spin rather than compute on more)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dtype = load_dtype("auto", torch.device(a.device).type)
    ad = load_single_file(a.model, a.device, dtype) if a.model else \
        DiffusersSD15.from_components(tiny_components(), device=a.device, weight_dtype=dtype)
    work = tempfile.mkdtemp(prefix="sb-bench-")
    write_dataset(os.path.join(work, "data"), a.per_shot, a.resolution, 0)
    cfg = TrainConfig.from_dict(dict(name="bench", data_dir=os.path.join(work, "data"), resolution=a.resolution,
                                     batch_size=a.batch, max_steps=a.steps, rank=8, alpha=8.0, vectors_per_token=2,
                                     bucket_step=min(64, a.resolution)))
    stamps, training = [], []

    def on_event(e):
        if e.kind == "step":
            stamps.append(time.perf_counter())
        elif e.kind == "status" and e.message == "Training":
            training.append(True)

    # Each VAE encode is counted at the adapter where it happens: before training (caching latents) or in the
    # epoch of the step under way (the trainer's batcher gives the same number of batches every epoch).
    caching_encodes, epoch_encodes = [], []
    encode = ad.encode_images

    def counting_encode(pixels):
        if training:
            epoch_encodes.append(len(stamps) // len(trainer.batcher))
        else:
            caching_encodes.append(1)
        return encode(pixels)
    ad.encode_images = counting_encode
    trainer = Trainer(ad, cfg, OutputPaths.under(os.path.join(work, "out")), on_event=on_event)
    result = trainer.run()
    ad.encode_images = encode
    n_images = result.report["used"]
    epochs = math.ceil(result.step / len(trainer.batcher))
    per_epoch = [epoch_encodes.count(k) for k in range(epochs)]
    warm = stamps[len(stamps) // 3:]
    step_s = (warm[-1] - warm[0]) / max(1, len(warm) - 1)

    # The bare reference: the same UNet with the same LoRA layers, forward+backward on a random batch.
    f = ad.vae_scale_factor
    prec = decide_precision(cfg.precision, ad.device.type,
                            ad.device.type == "cuda" and torch.cuda.is_bf16_supported(), ad.weight_dtype)
    x = torch.randn(a.batch, 4, a.resolution // f, a.resolution // f, device=ad.device)
    t = torch.randint(0, 1000, (a.batch,), device=ad.device)
    cond = torch.randn(a.batch, 77, ad.hidden_size, device=ad.device)
    lora = LoraSet(ad.lora_targets(False), 8, 8.0).to(ad.device)
    lora.attach()
    times = []
    for i in range(max(6, a.steps // 2)):
        if ad.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with ad.autocast(prec.autocast):
            out = ad.predict(x, t, cond)
        out.float().pow(2).mean().backward()
        if ad.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    lora.detach()
    bare = sorted(times[2:])[len(times[2:]) // 2]
    print(f"device {ad.device}, {'tiny random SD1.5 parts' if not a.model else a.model}, "
          f"{a.resolution}px, batch {a.batch}, {torch.get_num_threads()} threads")
    print(f"trainer step      {step_s * 1000:8.1f} ms  (mean over steps {len(stamps) - len(warm) + 1}-{len(stamps)})")
    print(f"bare fwd+bwd      {bare * 1000:8.1f} ms  (median)")
    print(f"ratio             {step_s / bare:8.2f}")
    print(f"VAE encodes       {len(caching_encodes)} before training for {n_images} images; in each of the "
          f"{epochs} epochs ({len(trainer.batcher)} batches each) of {result.step} steps: "
          f"{', '.join(map(str, per_epoch))}")


if __name__ == "__main__":
    main()

"""Step times of each stage of the toy-base training (tools/train_toy_base.py) for the candidate sizes, on CPU.

    OMP_NUM_THREADS=1 python benchmarks/bench_toyworld_base.py --threads 1 --steps 3

Prints per candidate: parameter counts, fp16 size, and seconds per step of VAE training (whole panels and the
half-size crops the training script uses), UNet + text-encoder training and sampling, at 64 and 128 px panels;
plus the panel generator's speed. Step times on a shared machine vary by +-20 %; take the lowest of a few runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lib_storyboard.models.clip_tokenizer import load_clip_tokenizer  # noqa: E402
from lib_storyboard.toyworld.base_arch import (  # noqa: E402
    CANDIDATES, build_scheduler, build_text_encoder, build_unet, build_vae, param_count)
from lib_storyboard.toyworld.sketches import draw_panel, tags_and_caption  # noqa: E402


def timed(fn, steps: int) -> float:
    fn()                                   # warm-up: allocations, kernels
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


def vae_step_time(arch, size: int, batch: int, steps: int) -> float:
    vae = build_vae(arch, size).train()
    opt = torch.optim.AdamW(vae.parameters(), 1e-3)
    x = torch.rand(batch, 3, size, size) * 2 - 1

    def step():
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        loss = F.l1_loss(rec, x) + 1e-6 * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return timed(step, steps)


def unet_step_time(arch, size: int, batch: int, steps: int, ids: torch.Tensor) -> float:
    unet, te = build_unet(arch, size // 8).train(), build_text_encoder(arch).train()
    sched = build_scheduler()
    opt = torch.optim.AdamW(list(unet.parameters()) + list(te.parameters()), 1e-3)
    lat = torch.randn(batch, 4, size // 8, size // 8)
    ids = ids[:batch]

    def step():
        noise = torch.randn_like(lat)
        t = torch.randint(0, 1000, (batch,))
        noisy = sched.add_noise(lat, noise, t)
        pred = unet(noisy, t, te(ids)[0]).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return timed(step, steps)


@torch.no_grad()
def sample_step_time(arch, size: int, batch: int, steps: int, ids: torch.Tensor) -> float:
    unet, te = build_unet(arch, size // 8).eval(), build_text_encoder(arch).eval()
    lat = torch.randn(2 * batch, 4, size // 8, size // 8)
    ctx = te(torch.cat([ids[:batch], ids[:batch]]))[0]      # classifier-free guidance doubles the batch
    return timed(lambda: unet(lat, torch.full((2 * batch,), 500), ctx).sample, steps)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    ap.add_argument("--vae-batch", type=int, default=16)
    ap.add_argument("--unet-batch", type=int, default=32)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    tok = load_clip_tokenizer()
    captions = [tags_and_caption(s)[1] for s in range(max(a.unet_batch, 16))]
    ids = tok(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); VAE batch {a.vae_batch}, "
          f"UNet batch {a.unet_batch}, sampling batch 16 (x2 for guidance)")
    for size in a.sizes:
        t0 = time.perf_counter()
        for s in range(20):
            draw_panel(s, "fs", size)
        print(f"generator: {(time.perf_counter() - t0) / 20 * 1000:.1f} ms per {size}px panel")
    for name in a.candidates:
        arch = CANDIDATES[name]
        n = {k: param_count(m) for k, m in (("unet", build_unet(arch)), ("vae", build_vae(arch)),
                                             ("text", build_text_encoder(arch)))}
        total = sum(n.values())
        print(f"\n[{name}] {arch.as_dict()}")
        print(f"  params: UNet {n['unet'] / 1e6:.2f} M, VAE {n['vae'] / 1e6:.2f} M, text {n['text'] / 1e6:.2f} M; "
              f"fp16 total {total * 2 / 2 ** 20:.1f} MiB")
        for size in a.sizes:
            v = vae_step_time(arch, size, a.vae_batch, a.steps)
            vc = vae_step_time(arch, size // 2, a.vae_batch, a.steps)
            u = unet_step_time(arch, size, a.unet_batch, a.steps, ids)
            s = sample_step_time(arch, size, 16, a.steps, ids)
            print(f"  {size:4d}px: VAE train {v:6.3f} s/step ({vc:.3f} on {size // 2}px crops) | UNet+text train "
                  f"{u:6.3f} s/step | sampling {s:6.3f} s per denoising step of 16 panels")


if __name__ == "__main__":
    main()

"""Train the toy-world base model from scratch: an SD1.5-architecture model that draws storyboard figures but
knows nothing about shot types (its captions never mention the framing).

    python tools/train_toy_base.py --out build/toy_base --seed 0

The defaults are the first run of the shipped base: arch "s" at 64 px, 6000 panels, 2500 VAE steps on 32-px crops,
7000 UNet steps of 32, 2 threads (about 55 minutes on 2 quiet CPU cores). The shipped base is that run continued
twice with --init (the README gives the three commands; its recipe.json records all three).

Stages, each seeded from --seed:
1. panels: the procedural generator draws --panels panels, framings balanced (cu/ms/fs in turn), each with its
   scene caption or its tags (half each, so sentence prompts and tag prompts both work).
2. VAE: trained for reconstruction (ink-weighted L1 + a small KL), then every panel and its mirror image are
   encoded once; the latents' spread sets the VAE's `scaling_factor`, as SD1.5's 0.18215 was set.
   --decoder-steps then fine-tunes the decoder alone on whole panels (the encoder and so the latent space stay as
   they are, as SD's ft-MSE VAE was made): crop training leaves full shots' thin legs and feet blurred.
3. UNet + CLIP text encoder, from scratch, jointly: epsilon prediction on SD1.5's noise schedule, min-SNR-5 loss
   weighting, 10 % empty captions (so unconditional and guided sampling work), an EMA of the UNet.
4. save: diffusers layout in fp16 (tokenizer = the real CLIP tokenizer), `recipe.json` with every setting, the
   seed, library versions, timings and metrics; an unconditional contact sheet `samples.png`, judged by the shot
   judge (a sample where it finds a clear head counts as a figure).
The output folder is written beside the target and swapped in at the end, so a crash leaves no half model.

--init <toybase.safetensors> continues an existing base instead (its config folder beside it): stage 2's training
is skipped and its VAE kept (only --decoder-steps changes its decoder), stage 3 starts from its UNet and text
encoder on --panels new panels drawn from --seed, and the parent's recipe is kept under "parent" in the new recipe,
so the chain of runs stays reproducible.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lib_storyboard.formats.atomic import atomic_write_text  # noqa: E402
from lib_storyboard.models.clip_tokenizer import load_clip_tokenizer  # noqa: E402
from lib_storyboard.toyworld.base_arch import (  # noqa: E402
    CANDIDATES, build_scheduler, build_text_encoder, build_unet, build_vae, param_count)
from lib_storyboard.toyworld.judge import judge_shot  # noqa: E402
from lib_storyboard.toyworld.sketches import SHOT_KEYS, draw_panel, panel_seed  # noqa: E402

RECIPE_VERSION = 1


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------------ data

def render_panels(n: int, size: int, seed: int) -> tuple[torch.Tensor, list[str], list[str], list[list[str]]]:
    """Grey panels as uint8 [n, size, size], their shots, captions and tags."""
    imgs = np.empty((n, size, size), np.uint8)
    shots, captions, tags = [], [], []
    for k in range(n):
        p = draw_panel(panel_seed(seed, k), SHOT_KEYS[k % 3], size)
        imgs[k] = np.asarray(p.image.convert("L"))
        shots.append(p.shot)
        captions.append(p.caption)
        tags.append(p.tags)
    return torch.from_numpy(imgs), shots, captions, tags


def to_pixels(gray_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [b, h, w] -> float RGB [b, 3, h, w] in -1..1 (grey panels, SD's pixel range)."""
    x = gray_u8.float().div(127.5).sub(1.0)
    return x[:, None].expand(-1, 3, -1, -1).contiguous()


def prompt_for(k: int, captions: list[str], tags: list[list[str]], rng: random.Random, drop: float) -> str:
    if rng.random() < drop:
        return ""
    if rng.random() < 0.5:
        return captions[k]
    t = list(tags[k])
    rng.shuffle(t)
    return ", ".join(t)


# ------------------------------------------------------------------------------------------------ stages

def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def random_crops(batch: torch.Tensor, crop: int, g: torch.Generator) -> torch.Tensor:
    """A random crop of each panel, on the 8-px latent grid (the VAE is convolutional: crops cost a quarter at
    half the side and teach the same strokes)."""
    size = batch.shape[-1]
    if crop >= size:
        return batch
    cells = (size - crop) // 8 + 1
    offs = torch.randint(0, cells, (len(batch), 2), generator=g) * 8
    return torch.stack([b[y:y + crop, x:x + crop] for b, (y, x) in zip(batch, offs.tolist())])


def optimizer_step(opt, loss: torch.Tensor, params, hist: list) -> None:
    """Backward, gradient clipping at 1, the update; the loss goes into `hist`."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    hist.append(loss.item())


def log_progress(what: str, step: int, total: int, hist: list, t0: float, every: int) -> None:
    if (step + 1) % every == 0 or step + 1 == total:
        log(f"{what} {step + 1}/{total} loss {np.mean(hist[-every:]):.4f} "
            f"({(time.perf_counter() - t0) / (step + 1):.3f} s/step)")


def ink_weighted_l1(rec: torch.Tensor, x: torch.Tensor, ink: float) -> torch.Tensor:
    """L1 where ink pixels weigh 1 + `ink` times more than paper (x = -1 is black ink, +1 white paper)."""
    return ((1.0 + ink * (1.0 - x) / 2.0) * (rec - x).abs()).mean()


def train_vae(vae, imgs: torch.Tensor, a) -> dict:
    """Reconstruction training; ink pixels weigh more, since nine tenths of a panel is white paper."""
    g = torch.Generator().manual_seed(a.seed + 1)
    opt = torch.optim.AdamW(vae.parameters(), lr=a.vae_lr, weight_decay=0.0)
    vae.train()
    t0, hist = time.perf_counter(), []
    for step in range(a.vae_steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, a.vae_steps, a.vae_lr, min(200, a.vae_steps // 10 + 1))
        idx = torch.randint(0, len(imgs), (a.vae_batch,), generator=g)
        x = to_pixels(random_crops(imgs[idx], a.vae_crop, g))
        if torch.rand((), generator=g) < 0.5:
            x = x.flip(-1)
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=g)).sample
        loss = ink_weighted_l1(rec, x, 4.0) + a.vae_kl * post.kl().mean()
        optimizer_step(opt, loss, vae.parameters(), hist)
        log_progress("vae", step, a.vae_steps, hist, t0, a.log_every)
    vae.eval()
    return {"vae_final_loss": float(np.mean(hist[-50:])) if hist else None,
            "vae_seconds": round(time.perf_counter() - t0, 1)}


def finetune_decoder(vae, imgs: torch.Tensor, lat_mean: torch.Tensor, lat_std: torch.Tensor, a) -> dict:
    """Decoder-only fine-tuning on whole panels from the frozen encoder's latents, as SD's ft-MSE VAE was made: the
    latent space the UNet draws in stays exactly as it is, while the decoder learns to bring back what crop training
    blurred (the thin legs and feet of full shots, which the judge needs)."""
    g = torch.Generator().manual_seed(a.seed + 6)
    vae.requires_grad_(False)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=a.decoder_lr, weight_decay=0.0)
    n = len(imgs)
    vae.decoder.train()
    t0, hist = time.perf_counter(), []
    for step in range(a.decoder_steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, a.decoder_steps, a.decoder_lr, min(200, a.decoder_steps // 10 + 1))
        idx = torch.randint(0, 2 * n, (a.vae_batch,), generator=g)     # index >= n: the mirror image
        z = lat_mean[idx] + lat_std[idx] * torch.randn(lat_mean[idx].shape, generator=g)
        x = to_pixels(imgs[idx % n])
        x = torch.where((idx >= n).view(-1, 1, 1, 1), x.flip(-1), x)
        loss = ink_weighted_l1(vae.decode(z).sample, x, a.decoder_ink)
        optimizer_step(opt, loss, params, hist)
        log_progress("decoder", step, a.decoder_steps, hist, t0, a.log_every)
    vae.eval()
    vae.requires_grad_(False)
    return {"decoder_final_loss": float(np.mean(hist[-50:])) if hist else None,
            "decoder_seconds": round(time.perf_counter() - t0, 1)}


@torch.no_grad()
def encode_all(vae, imgs: torch.Tensor, batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and stds of every panel and of its mirror image: [2n, 4, h/8, w/8] each."""
    means, stds = [], []
    for flip in (False, True):
        for i in range(0, len(imgs), batch):
            x = to_pixels(imgs[i:i + batch])
            d = vae.encode(x.flip(-1) if flip else x).latent_dist
            means.append(d.mean)
            stds.append(d.std)
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def vae_metrics(vae, imgs: torch.Tensor, shots: list[str], n: int = 60) -> dict:
    """Held-out reconstruction error and how often the shot judge still reads the right framing."""
    x = to_pixels(imgs[:n])
    rec = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
    ok = sum(judge_shot(_to_image(r)).shot == s for r, s in zip(rec, shots[:n]))
    return {"vae_heldout_l1": round(float((rec - x).abs().mean()), 4), "vae_recon_judge_acc": round(ok / n, 3)}


def train_unet(unet, te, tok, lat_mean, lat_std, scale: float, captions, tags, a) -> tuple[dict, dict]:
    """Joint UNet + text-encoder training from scratch; returns metrics and the UNet's EMA weights."""
    sched = build_scheduler()
    g = torch.Generator().manual_seed(a.seed + 2)
    rng = random.Random(a.seed + 3)
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=a.unet_lr, weight_decay=1e-2)
    ema = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    alphas = sched.alphas_cumprod
    snr = alphas / (1 - alphas)
    n = len(captions)
    unet.train()
    te.train()
    t0, hist = time.perf_counter(), []
    for step in range(a.unet_steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, a.unet_steps, a.unet_lr, min(500, a.unet_steps // 10 + 1))
        idx = torch.randint(0, 2 * n, (a.unet_batch,), generator=g)     # index >= n: the mirror image
        eps = torch.randn(lat_mean[idx].shape, generator=g)
        lat = (lat_mean[idx] + lat_std[idx] * eps) * scale
        prompts = [prompt_for(int(i) % n, captions, tags, rng, a.caption_dropout) for i in idx]
        ids = tok(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        noise = torch.randn(lat.shape, generator=g)
        t = torch.randint(0, 1000, (a.unet_batch,), generator=g)
        pred = unet(sched.add_noise(lat, noise, t), t, te(ids)[0]).sample
        w = torch.clamp(snr[t], max=a.min_snr) / snr[t]          # min-SNR weighting for epsilon prediction
        loss = (w * F.mse_loss(pred, noise, reduction="none").mean((1, 2, 3))).mean()
        optimizer_step(opt, loss, params, hist)
        with torch.no_grad():
            decay = min(a.ema, (1 + step) / (10 + step))
            for k, v in unet.state_dict().items():
                if v.dtype.is_floating_point:
                    ema[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
        log_progress("unet", step, a.unet_steps, hist, t0, a.log_every)
    unet.eval()
    te.eval()
    return ({"unet_final_loss": float(np.mean(hist[-100:])) if hist else None,
             "unet_seconds": round(time.perf_counter() - t0, 1)}, ema)


# ------------------------------------------------------------------------------------------------ sampling

def _to_image(x: torch.Tensor):
    from PIL import Image

    a = ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(a)


@torch.no_grad()
def sample(unet, te, vae, tok, prompts: list[str], steps: int, guidance: float, seed: int, size: int):
    """DDIM sampling with classifier-free guidance; returns PIL images."""
    from diffusers import DDIMScheduler

    sched = DDIMScheduler.from_config(build_scheduler().config, clip_sample=False, set_alpha_to_one=False)
    sched.set_timesteps(steps)
    enc = lambda p: te(tok(p, padding="max_length", max_length=77, truncation=True,  # noqa: E731
                           return_tensors="pt").input_ids)[0]
    cond, uncond = enc(prompts), enc([""] * len(prompts))
    g = torch.Generator().manual_seed(seed)
    lat = torch.randn((len(prompts), 4, size // 8, size // 8), generator=g)
    for t in sched.timesteps:
        if guidance == 1.0:
            eps = unet(lat, t, cond).sample
        else:
            e = unet(torch.cat([lat, lat]), t, torch.cat([uncond, cond])).sample
            eu, ec = e.chunk(2)
            eps = eu + guidance * (ec - eu)
        lat = sched.step(eps, t, lat).prev_sample
    imgs = vae.decode(lat / vae.config.scaling_factor).sample
    return [_to_image(x) for x in imgs]


def contact_sheet(images, cols: int):
    from PIL import Image

    w, h = images[0].size
    rows = math.ceil(len(images) / cols)
    sheet = Image.new("RGB", (cols * (w + 2) + 2, rows * (h + 2) + 2), (128, 128, 128))
    for i, im in enumerate(images):
        sheet.paste(im, (2 + (i % cols) * (w + 2), 2 + (i // cols) * (h + 2)))
    return sheet


def judge_summary(images) -> dict:
    """How many samples the shot judge sees a clear figure in, and their framings (a base should draw all three)."""
    js = [judge_shot(im) for im in images]
    shots = [j.shot for j in js if j.figure]
    return {"n": len(js), "figure_rate": round(len(shots) / len(js), 3), **{k: shots.count(k) for k in SHOT_KEYS}}


# ------------------------------------------------------------------------------------------------ main

def load_parent(path: str):
    """UNet, text encoder and VAE (fp32, trainable) of an existing toy base, and the recipe it was made with."""
    from lib_storyboard.adapters.diffusers_sd15 import load_single_file
    from lib_storyboard.formats.hashing import short_hash

    recipe_file = os.path.join(os.path.dirname(os.path.abspath(path)), "recipe.json")
    if not os.path.isfile(recipe_file):
        raise SystemExit(f"--init needs the base's recipe.json beside {os.path.basename(path)}.")
    with open(recipe_file, encoding="utf-8") as f:
        parent = json.load(f)
    parent["file_hash"] = short_hash(path)
    ad = load_single_file(path)
    return ad.unet.float().requires_grad_(True), ad.text_encoder.float().requires_grad_(True), ad.vae.float(), parent


def save(out: str, unet, te, vae, tok, recipe: dict, sheet) -> None:
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    tmp = out.rstrip("/\\") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=te, tokenizer=tok, unet=unet,
        scheduler=DDIMScheduler.from_config(build_scheduler().config, clip_sample=False, set_alpha_to_one=False),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.to(torch.float16).save_pretrained(tmp, safe_serialization=True)
    # The same weights as one SD1.5-style file (LDM keys) with its config folder beside it: what users and our
    # standalone trainer load (`toybase.config/` is found by the checkpoint's stem).
    from lib_storyboard.formats.ldm_checkpoint import diffusers_to_ldm, save_ldm_checkpoint, write_config_dir

    ldm = diffusers_to_ldm(unet.state_dict(), vae.state_dict(), te.state_dict(), unet.config, vae.config)
    save_ldm_checkpoint(os.path.join(tmp, "toybase.safetensors"), ldm,
                        metadata={"recipe": json.dumps(recipe["args"]), "seed": str(recipe["args"]["seed"])})
    write_config_dir(os.path.join(tmp, "toybase.config"), unet, vae, te, pipe.scheduler)
    sheet.save(os.path.join(tmp, "samples.png"))
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tmp) for f in fs
               if f.endswith(".safetensors"))
    recipe["metrics"]["weights_bytes_fp16"] = size
    atomic_write_text(os.path.join(tmp, "recipe.json"), json.dumps(recipe, indent=1) + "\n")
    if os.path.isdir(out):
        old = out.rstrip("/\\") + ".old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (diffusers layout)")
    ap.add_argument("--init", default=None, help="continue this toy base (.safetensors with recipe.json beside it)")
    ap.add_argument("--arch", default="s", choices=sorted(CANDIDATES))
    ap.add_argument("--size", type=int, default=64, help="panel size in pixels (a multiple of 8)")
    ap.add_argument("--panels", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vae-steps", type=int, default=2500)
    ap.add_argument("--vae-batch", type=int, default=16)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--vae-kl", type=float, default=1e-6)
    ap.add_argument("--vae-crop", type=int, default=32, help="train the VAE on crops of this size (pixels)")
    ap.add_argument("--decoder-steps", type=int, default=0,
                    help="then fine-tune the VAE decoder alone on whole panels (the latent space is kept)")
    ap.add_argument("--decoder-lr", type=float, default=3e-4)
    ap.add_argument("--decoder-ink", type=float, default=4.0, help="how much more ink pixels weigh than paper")
    ap.add_argument("--unet-steps", type=int, default=7000)
    ap.add_argument("--unet-batch", type=int, default=32)
    ap.add_argument("--unet-lr", type=float, default=5e-4)
    ap.add_argument("--min-snr", type=float, default=5.0)
    ap.add_argument("--caption-dropout", type=float, default=0.1)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--samples", type=int, default=48, help="unconditional samples in the contact sheet")
    ap.add_argument("--sample-steps", type=int, default=30)
    ap.add_argument("--log-every", type=int, default=100)
    a = ap.parse_args(argv)
    if a.size % 8 or a.size < 32:
        ap.error("--size must be a multiple of 8, at least 32")
    if a.vae_crop % 8 or a.vae_crop < 16:
        ap.error("--vae-crop must be a multiple of 8, at least 16")
    return a


def main(argv=None) -> None:
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    np.random.seed(a.seed)
    arch = CANDIDATES[a.arch]
    import diffusers
    import transformers

    recipe = {"recipe_version": RECIPE_VERSION, "script": "tools/train_toy_base.py",
              "args": {**vars(a), "out": os.path.basename(os.path.normpath(a.out)),   # no machine paths
                       "init": a.init and os.path.basename(a.init)},
              "arch": arch.as_dict(), "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                                                    "transformers": transformers.__version__,
                                                    "python": platform.python_version()},
              "captions": "scene captions or shuffled scene tags; never the shot", "metrics": {}}
    t_all = time.perf_counter()

    log(f"rendering {a.panels} panels at {a.size}px")
    imgs, shots, captions, tags = render_panels(a.panels, a.size, a.seed)
    held_imgs, held_shots, _, _ = render_panels(60, a.size, a.seed + 10_000)

    if a.init:
        unet, te, vae, recipe["parent"] = load_parent(a.init)
        recipe["arch"] = recipe["parent"].get("arch", recipe["arch"])
        lat_mean, lat_std = encode_all(vae, imgs)
        scale = float(vae.config.scaling_factor)
        log(f"continuing {os.path.basename(a.init)} (VAE kept, scaling factor {scale:.4f})")
    else:
        vae = build_vae(arch, a.size)
        log(f"VAE {param_count(vae) / 1e6:.2f} M params, {a.vae_steps} steps")
        recipe["metrics"].update(train_vae(vae, imgs, a))
        lat_mean, lat_std = encode_all(vae, imgs)
        scale = float(1.0 / lat_mean.std())
        vae.register_to_config(scaling_factor=scale)
    if a.decoder_steps:
        log(f"decoder fine-tuning, {a.decoder_steps} steps")
        recipe["metrics"].update(finetune_decoder(vae, imgs, lat_mean, lat_std, a))
    recipe["metrics"].update(vae_metrics(vae, held_imgs, held_shots), scaling_factor=round(scale, 5))
    log(f"VAE done: {recipe['metrics']}")

    tok = load_clip_tokenizer()
    torch.manual_seed(a.seed + 4)
    if not a.init:
        unet, te = build_unet(arch, a.size // 8), build_text_encoder(arch)
    log(f"UNet {param_count(unet) / 1e6:.2f} M, text encoder {param_count(te) / 1e6:.2f} M params, "
        f"{a.unet_steps} steps")
    metrics, ema = train_unet(unet, te, tok, lat_mean, lat_std, scale, captions, tags, a)
    recipe["metrics"].update(metrics)
    unet.load_state_dict(ema)

    images = sample(unet, te, vae, tok, [""] * a.samples, a.sample_steps, 1.0, a.seed + 5, a.size)
    recipe["metrics"]["unconditional_samples"] = judge_summary(images)
    log(f"unconditional samples: {recipe['metrics']['unconditional_samples']}")
    recipe["metrics"]["total_seconds"] = round(time.perf_counter() - t_all, 1)
    save(a.out, unet, te, vae, tok, recipe, contact_sheet(images, cols=8))
    log(f"saved {a.out} ({recipe['metrics']['weights_bytes_fp16'] / 2 ** 20:.1f} MiB of fp16 weights)")


if __name__ == "__main__":
    main()

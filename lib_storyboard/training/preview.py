"""Preview images during training, drawn through the adapter with the vectors and LoRA being trained.

A deterministic DDIM sampler (eta 0) with classifier-free guidance: the same seeds give the same noise at every
preview, so the grid shows what training changed and nothing else. It goes through the adapter, so it works the
same inside A1111 and on diffusers without touching the host's sampler state.
"""
from __future__ import annotations

import torch
from PIL import Image


@torch.no_grad()
def sample(adapter, prompts: list[str], tokens: dict, seeds: list[int], size: tuple[int, int], steps: int = 20,
           cfg: float = 7.0, negative: str = "", autocast_dtype=None, batch: int = 1) -> list[Image.Image]:
    """One image per (prompt, seed). `batch` prompts share each UNet call (faster for small models; the noise of
    each image still comes from its own seed, so the result does not depend on the batch size beyond rounding)."""
    images = []
    for i in range(0, len(prompts), max(1, batch)):
        images += _sample_batch(adapter, prompts[i:i + batch], tokens, seeds[i:i + batch], size, steps, cfg,
                                negative, autocast_dtype)
    return images


def _sample_batch(adapter, prompts, tokens, seeds, size, steps, cfg, negative, autocast_dtype):
    w, h = size
    f = adapter.vae_scale_factor
    ab = adapter.alphas_cumprod()
    T = ab.shape[0]
    n = len(prompts)
    ts = torch.linspace(T - 1, 0, steps).round().long().tolist()
    x = torch.cat([torch.randn((1, 4, h // f, w // f), generator=torch.Generator().manual_seed(int(s)))
                   for s in seeds]).to(adapter.device)
    with adapter.autocast(autocast_dtype):
        cond = adapter.encode_text(list(prompts) + [negative] * n, tokens)
    for i, t in enumerate(ts):
        tt = torch.full((2 * n,), t, device=adapter.device, dtype=torch.long)
        with adapter.autocast(autocast_dtype):
            out = adapter.predict(torch.cat([x, x]), tt, cond).float()
        c, u = out.chunk(2)
        pred = u + cfg * (c - u)
        a_t = ab[t]
        a_prev = ab[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0, device=ab.device)
        if adapter.parameterization == "v":
            x0 = a_t.sqrt() * x - (1 - a_t).sqrt() * pred
            eps = a_t.sqrt() * pred + (1 - a_t).sqrt() * x
        else:
            eps = pred
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    imgs = adapter.decode_latents(x)
    return [Image.fromarray((im.permute(1, 2, 0).numpy() * 255).round().astype("uint8")) for im in imgs]


def grid(images: list[Image.Image], cols: int, labels: list[str] | None = None) -> Image.Image:
    """Images in a grid, one column per token; a thin caption strip on top when labels are given."""
    w, h = images[0].size
    rows = (len(images) + cols - 1) // cols
    top = 14 if labels else 0
    out = Image.new("RGB", (cols * w, rows * h + top), "white")
    if labels:
        from PIL import ImageDraw
        d = ImageDraw.Draw(out)
        for i, label in enumerate(labels[:cols]):
            d.text((i * w + 2, 1), label, fill="black")
    for i, im in enumerate(images):
        out.paste(im, ((i % cols) * w, top + (i // cols) * h))
    return out

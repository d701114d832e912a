"""Damage done to clean panels so the shot judge is tested on what a half-trained model draws.

Each function takes and returns an RGB PIL image of the same size; amounts are relative to the image size so a
64-px and a 512-px panel suffer alike. Deterministic given `seed`.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageChops, ImageFilter


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"), np.float32) / 255.0


def _img(a: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8)).convert("RGB")


def blur(img: Image.Image, amount: float = 0.012, seed: int = 0) -> Image.Image:
    """Gaussian blur with sigma = `amount` x the image size."""
    return img.filter(ImageFilter.GaussianBlur(amount * img.height))


def noise(img: Image.Image, amount: float = 0.12, seed: int = 0) -> Image.Image:
    """Additive Gaussian pixel noise, sigma in 0..1 grey levels."""
    a = _arr(img)
    return _img(a + np.random.default_rng(seed).normal(0, amount, a.shape))


def faint(img: Image.Image, amount: float = 0.45, seed: int = 0) -> Image.Image:
    """Grey lines on grey paper: the ink keeps `amount` of its contrast."""
    a = _arr(img)
    return _img(0.92 - (0.92 - a * 0.92) * amount)


def thick(img: Image.Image, amount: float = 0.012, seed: int = 0) -> Image.Image:
    """Thicker pen: the ink spreads by `amount` x the image size (at least one pixel)."""
    k = max(3, 2 * round(amount * img.height) + 1)
    return img.filter(ImageFilter.MinFilter(k))


def thin(img: Image.Image, amount: float = 0.5, seed: int = 0) -> Image.Image:
    """Thinner pen: the ink is eroded at 4x and reduced, losing about `amount` of its width."""
    big = img.resize((img.width * 4, img.height * 4), Image.BICUBIC)
    k = max(3, 2 * round(amount * 2) + 1)
    return big.filter(ImageFilter.MaxFilter(k)).resize(img.size, Image.BOX)


def shift(img: Image.Image, amount: float = 0.06, seed: int = 0) -> Image.Image:
    """Translate by up to `amount` x the size in x and y, filling with paper."""
    rng = np.random.default_rng(seed)
    dx, dy = (np.round(rng.uniform(-amount, amount, 2) * img.height)).astype(int)
    out = Image.new("RGB", img.size, (255, 255, 255))
    out.paste(img, (int(dx), int(dy)))
    return out


def broken(img: Image.Image, amount: float = 0.2, seed: int = 0) -> Image.Image:
    """Broken strokes: about `amount` of the drawing is wiped by paper-coloured blotches 1/20 of the size."""
    rng = np.random.default_rng(seed)
    n = 20
    mask = rng.random((n, n)) < amount
    m = Image.fromarray((mask * 255).astype(np.uint8)).resize(img.size, Image.NEAREST).convert("RGB")
    return ImageChops.lighter(img.convert("RGB"), m)


def diffusion_like(img: Image.Image, amount: float = 1.0, seed: int = 0) -> Image.Image:
    """What an undertrained model tends to draw: soft, greyish, speckled, slightly off-centre, with gaps."""
    out = broken(img, 0.12 * amount, seed)
    out = blur(out, 0.008 * amount)
    out = faint(out, 1.0 - 0.4 * amount)
    out = shift(out, 0.03 * amount, seed + 1)
    return noise(out, 0.06 * amount, seed + 2)


DEGRADATIONS = {"blur": blur, "noise": noise, "faint": faint, "thick": thick, "thin": thin, "shift": shift,
                "broken": broken, "diffusion_like": diffusion_like}

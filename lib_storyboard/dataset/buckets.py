"""Aspect-ratio bucketing: portrait and landscape sketches train at their own shape instead of a square crop.

Each image goes to the bucket closest to its aspect ratio; a batch only ever holds one bucket's images, so every
tensor in it has the same size.
"""
from __future__ import annotations

import math
import random

from PIL import Image


def make_buckets(resolution: int, step: int = 64, max_ratio: float = 2.0) -> list[tuple[int, int]]:
    """(w, h) sizes: multiples of `step`, area ≤ resolution², long/short ≤ max_ratio, the square included.

    Going from the square to narrower short sides, the long side is as large as the area and the ratio allow,
    and a bucket is kept only when it is wider than the last one kept. The set is symmetric (every landscape
    bucket has its portrait twin) and sorted from the tallest to the widest.
    """
    if step <= 0 or step % 8:
        raise ValueError(f"The bucket step must be a positive multiple of 8 (the VAE's scale), not {step}.")
    if resolution < step or resolution % step:
        raise ValueError(f"The resolution must be a multiple of the bucket step {step}, not {resolution}.")
    if max_ratio < 1:
        raise ValueError(f"The largest aspect ratio must be at least 1, not {max_ratio}.")
    area = resolution * resolution
    wide = [(resolution, resolution)]  # (long, short), from the square outwards
    for short in range(resolution - step, 0, -step):
        long = min(area // short, int(short * max_ratio + 1e-9)) // step * step
        if long > wide[-1][0]:  # else it would only be a smaller crop of the last bucket
                wide.append((long, short))
    sizes = set(wide) | {(h, w) for w, h in wide}
    return sorted(sizes, key=lambda s: (s[0] / s[1], s[0]))


def nearest_bucket(width: int, height: int, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is closest to width/height (compared in log space, so 2:1 and 1:2 are
    equally far from 1:1); the first such bucket on a tie."""
    if width <= 0 or height <= 0:
        raise ValueError(f"An image size must be positive, not {width}×{height}.")
    if not buckets:
        raise ValueError("There are no buckets to choose from.")
    r = math.log(width / height)
    return min(buckets, key=lambda b: abs(math.log(b[0] / b[1]) - r))


def fit_to_bucket(img: Image.Image, bucket: tuple[int, int]) -> Image.Image:
    """Resize `img` (LANCZOS) to cover the bucket, then crop the centre to exactly the bucket's size."""
    bw, bh = bucket
    w, h = img.size
    scale = max(bw / w, bh / h)
    nw, nh = max(bw, round(w * scale)), max(bh, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.LANCZOS)
    left, top = (nw - bw) // 2, (nh - bh) // 2
    if (nw, nh) != (bw, bh):
        img = img.crop((left, top, left + bw, top + bh))
    return img


class BucketBatcher:
    """Per-epoch batches of item indices, one bucket per batch.

    `batches(epoch)` depends only on (seed, epoch), so a resumed run recomputes the same order. Within a bucket
    the indices are shuffled and cut into batches (the last, smaller one is kept); then the batches of all
    buckets are shuffled together.
    """

    def __init__(self, bucket_of: list[tuple], batch_size: int, seed: int):
        if batch_size < 1:
            raise ValueError(f"The batch size must be at least 1, not {batch_size}.")
        self.batch_size = batch_size
        self.seed = seed
        groups: dict[tuple, list[int]] = {}
        for i, b in enumerate(bucket_of):
            groups.setdefault(tuple(b), []).append(i)
        self._groups = [groups[k] for k in sorted(groups)]  # a fixed bucket order for the rng to start from

    def __len__(self) -> int:
        """Batches per epoch (the same for every epoch)."""
        return sum(-(-len(g) // self.batch_size) for g in self._groups)

    def batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(f"storyboard-buckets:{self.seed}:{epoch}")  # str seeds hash with sha512: stable
        out = []
        for group in self._groups:
            idx = list(group)
            rng.shuffle(idx)
            out += [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        rng.shuffle(out)
        return out

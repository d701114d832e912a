"""The latent cache: every usable image of a scanned dataset loaded, fitted to its aspect bucket and encoded by the
VAE once per run; training then draws from the cached latent distributions (mean, std) instead of re-encoding."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .buckets import BucketBatcher, fit_to_bucket, make_buckets, nearest_bucket
from .images import BadImage, load_rgb
from .scan import DataItem, DatasetError, DatasetScan


@dataclass
class LatentCache:
    items: list[DataItem] = field(default_factory=list)
    means: list[torch.Tensor] = field(default_factory=list)     # (4, h, w) fp32 on the CPU, scaled
    stds: list[torch.Tensor] = field(default_factory=list)
    bucket_of: list[tuple[int, int]] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)          # images the scan accepted but that failed to load
    encodes: int = 0                                           # VAE encodes this cache took
    stopped: bool = False                                      # should_stop() said stop before every image was in

    def batcher(self, batch_size: int, seed: int) -> BucketBatcher:
        return BucketBatcher(self.bucket_of, batch_size, seed)

    def buckets_used(self) -> dict[str, int]:
        return {f"{w}x{h}": self.bucket_of.count((w, h)) for (w, h) in sorted(set(self.bucket_of))}

    def signature(self) -> list:
        """What a resumed run must find again: the same images, shots and tags in the same order."""
        return [[it.rel_path, it.shot_key, list(it.tags)] for it in self.items]


def cache_latents(encode: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], scan: DatasetScan,
                  resolution: int, bucketing: bool, bucket_step: int, max_bucket_ratio: float,
                  should_stop: Callable[[], bool] = lambda: False) -> LatentCache:
    """Encode each image of `scan` with `encode` (pixels in [-1, 1] → (mean, std)); stops early when asked."""
    min_side = max(32, resolution // 8)
    buckets = make_buckets(resolution, bucket_step, max_bucket_ratio) if bucketing else [(resolution, resolution)]
    cache = LatentCache()
    for item in scan.items:
        try:
            img = load_rgb(item.path, min_side=min_side)
        except BadImage as e:
            cache.skipped.append({"path": item.rel_path, "reason": str(e)})
            continue
        b = nearest_bucket(img.width, img.height, buckets)
        img = fit_to_bucket(img, b)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        mean, std = encode(x)
        cache.encodes += 1
        cache.items.append(item)
        cache.means.append(mean[0])
        cache.stds.append(std[0])
        cache.bucket_of.append(b)
        if should_stop():
            cache.stopped = True
            break
    if not cache.items:
        raise DatasetError(f"No image in {scan.root} could be read.")
    return cache

"""Near-duplicate frames: a 64-bit difference hash per image, compared by Hamming distance.

Film stills repeat (a held shot, shot/reverse-shot cutting back to the same set-up); training on ten copies of one
frame teaches that frame. The hash compares brightness gradients of a 9×8 thumbnail, so it survives re-encoding,
small moves and grading changes, but not a new composition.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

NEAR = 6  # bits of 64 that may differ for two frames to count as the same picture


def dhash(image: Image.Image | np.ndarray) -> int:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    small = np.asarray(image.convert("L").resize((9, 8), Image.BILINEAR), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def distance(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


class Deduper:
    """Remembers the hashes kept so far; `is_new` says whether an image differs from all of them (and keeps it)."""

    def __init__(self, near: int = NEAR) -> None:
        self.near = near
        self.kept: list[int] = []

    def is_new(self, image) -> bool:
        h = dhash(image)
        if any(distance(h, k) <= self.near for k in self.kept):
            return False
        self.kept.append(h)
        return True

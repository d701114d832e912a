"""The result every detector returns: boxes, one mask per detection, confidences, labels and a preview.

Detectors differ (mediapipe gives relative boxes or landmarks, YOLO gives tensors); everything after detection
(mask operations, the region plan) only sees this type, so it never knows which detector ran.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels, x2/y2 exclusive


class DetectorError(ValueError):
    """A detector cannot run (package missing, model absent, download impossible); the message is one sentence."""


@dataclass
class Detections:
    """Detections on one image of `size` (width, height). `masks[i]` is a PIL 'L' image of that size (255 = region)."""

    size: tuple[int, int]
    boxes: list[Box] = field(default_factory=list)
    masks: list[Image.Image] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    preview: Image.Image | None = None

    def __post_init__(self) -> None:
        n = len(self.boxes)
        if not (len(self.masks) == len(self.confidences) == len(self.labels) == n):
            raise ValueError("Detections need as many masks, confidences and labels as boxes.")
        for m in self.masks:
            if m.mode != "L" or m.size != tuple(self.size):
                raise ValueError(f"Every detection mask must be a PIL 'L' image of size {tuple(self.size)}.")

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, indices: Sequence[int]) -> Detections:
        """A new Detections holding the given detections in the given order (the preview is kept)."""
        idx = list(indices)
        return Detections(self.size, [self.boxes[i] for i in idx], [self.masks[i] for i in idx],
                          [self.confidences[i] for i in idx], [self.labels[i] for i in idx], self.preview)


def clamp_box(box: Sequence[float], size: tuple[int, int]) -> Box:
    w, h = size
    x1, y1, x2, y2 = (float(v) for v in box)
    return (min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h))


def box_mask(box: Sequence[float], size: tuple[int, int]) -> Image.Image:
    """A filled rectangle mask for a box model: pixels whose centre lies inside the box are 255."""
    w, h = size
    x1, y1, x2, y2 = clamp_box(box, size)
    arr = np.zeros((h, w), np.uint8)
    arr[int(round(y1)):int(round(y2)), int(round(x1)):int(round(x2))] = 255
    return Image.fromarray(arr, "L")


def draw_preview(image: Image.Image, boxes: Sequence[Box], labels: Sequence[str],
                 confidences: Sequence[float], masks: Sequence[Image.Image] = ()) -> Image.Image:
    """The image with masks tinted and boxes outlined, for the UI and the optional saved mask preview."""
    out = image.convert("RGB")
    if masks:
        union = np.zeros((out.height, out.width), np.uint8)
        for m in masks:
            union = np.maximum(union, np.asarray(m))
        tint = Image.new("RGB", out.size, (255, 0, 160))
        out = Image.composite(tint, out, Image.fromarray(union // 2, "L"))
    draw = ImageDraw.Draw(out)
    for box, label, conf in zip(boxes, labels, confidences):
        draw.rectangle([box[0], box[1], box[2] - 1, box[3] - 1], outline=(0, 255, 0), width=2)
        draw.text((box[0] + 3, box[1] + 2), f"{label} {conf:.2f}", fill=(0, 255, 0))
    return out

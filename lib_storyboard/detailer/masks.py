"""Mask operations between detection and inpainting: filter, rank, order, shift, grow/shrink, merge, blur.

Order of operations (what users of other detailers expect): confidence → area ratio → top-k → detection order →
offset → dilate/erode → merge (or merge and invert). Blur is applied last, when the region is pasted back.
Conventions: masks are PIL 'L' images, 255 inside; x offset > 0 moves right, y offset > 0 moves **up**;
dilate/erode by n px moves every edge by exactly n px (a (2n+1)² square kernel); the image border is never a
source of mask, and a region touching the border is not eroded from that side.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, ImageFilter

from ..detection.result import Box, Detections

TOP_K_BY = ("area", "confidence")
ORDERS = ("none", "left_to_right", "area", "confidence")
MERGE_MODES = ("none", "merge", "merge_invert")


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def filter_confidence(dets: Detections, threshold: float) -> Detections:
    return dets.select([i for i, c in enumerate(dets.confidences) if c >= threshold])


def filter_area_ratio(dets: Detections, min_ratio: float = 0.0, max_ratio: float = 1.0) -> Detections:
    """Keep detections whose box covers between min_ratio and max_ratio (inclusive) of the image area."""
    total = float(dets.size[0] * dets.size[1]) or 1.0
    return dets.select([i for i, b in enumerate(dets.boxes) if min_ratio <= _area(b) / total <= max_ratio])


def top_k(dets: Detections, k: int, by: str = "area") -> Detections:
    """The k largest (or most confident) detections, best first; k <= 0 keeps all in their order."""
    if by not in TOP_K_BY:
        raise ValueError(f"top_k_by must be one of {', '.join(TOP_K_BY)}, not {by!r}.")
    if k <= 0 or k >= len(dets):
        return dets
    key = (lambda i: _area(dets.boxes[i])) if by == "area" else (lambda i: dets.confidences[i])
    return dets.select(sorted(range(len(dets)), key=key, reverse=True)[:k])


def sort_detections(dets: Detections, order: str) -> Detections:
    """Detection order, which decides which `[SEP]` prompt each region gets: left→right by the box's left edge
    (then top edge), or largest area first, or most confident first; "none" keeps the detector's order."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}.")
    idx = list(range(len(dets)))
    if order == "left_to_right":
        idx.sort(key=lambda i: (dets.boxes[i][0], dets.boxes[i][1]))
    elif order == "area":
        idx.sort(key=lambda i: -_area(dets.boxes[i]))
    elif order == "confidence":
        idx.sort(key=lambda i: -dets.confidences[i])
    return dets.select(idx)


def offset_mask(mask: Image.Image, dx: int, dy: int) -> Image.Image:
    """Shift by dx px right and dy px up; what leaves the image is lost, what enters is empty (no wrap-around)."""
    if dx == 0 and dy == 0:
        return mask
    src = np.asarray(mask)
    h, w = src.shape
    out = np.zeros_like(src)
    sx, sy = dx, -dy  # image rows grow downwards
    if abs(sx) < w and abs(sy) < h:
        out[max(sy, 0):h + min(sy, 0), max(sx, 0):w + min(sx, 0)] = \
            src[max(-sy, 0):h + min(-sy, 0), max(-sx, 0):w + min(-sx, 0)]
    return Image.fromarray(out, "L")


def dilate_erode(mask: Image.Image, px: int) -> Image.Image:
    """Grow (px > 0) or shrink (px < 0) the region by |px| pixels in every direction, diagonals included."""
    if px == 0:
        return mask
    kernel = np.ones((2 * abs(px) + 1, 2 * abs(px) + 1), np.uint8)
    arr = np.asarray(mask)
    out = cv2.dilate(arr, kernel) if px > 0 else cv2.erode(arr, kernel)
    return Image.fromarray(out, "L")


def merge_masks(masks: Sequence[Image.Image], mode: str) -> list[Image.Image]:
    """"none": unchanged; "merge": one union mask; "merge_invert": everything except the union."""
    if mode not in MERGE_MODES:
        raise ValueError(f"merge mode must be one of {', '.join(MERGE_MODES)}, not {mode!r}.")
    if mode == "none" or not masks:
        return list(masks)
    union = np.asarray(masks[0]).copy()
    for m in masks[1:]:
        np.maximum(union, np.asarray(m), out=union)
    if mode == "merge_invert":
        union = 255 - union
    return [Image.fromarray(union, "L")]


def blur_mask(mask: Image.Image, px: int) -> Image.Image:
    """Gaussian-feathered edge of radius px (0: unchanged); used to paste the inpainted region back smoothly."""
    return mask.filter(ImageFilter.GaussianBlur(px)) if px > 0 else mask


def mask_bbox(mask: Image.Image) -> tuple[int, int, int, int] | None:
    """(x1, y1, x2, y2), x2/y2 exclusive, of the non-zero pixels; None for an empty mask."""
    return mask.getbbox()


def prepare_masks(dets: Detections, *, confidence: float = 0.0, min_ratio: float = 0.0, max_ratio: float = 1.0,
                  top_k_count: int = 0, top_k_by: str = "area", order: str = "none", x_offset: int = 0,
                  y_offset: int = 0, dilate: int = 0, merge: str = "none") -> tuple[Detections, list[Image.Image]]:
    """Apply every step in order. Returns the kept detections (in region order) and the final masks; masks
    that end up empty (eroded away, shifted off the image) are dropped. After merging, the detections no longer
    pair one-to-one with the single mask."""
    kept = filter_confidence(dets, confidence)
    kept = filter_area_ratio(kept, min_ratio, max_ratio)
    kept = top_k(kept, top_k_count, top_k_by)
    kept = sort_detections(kept, order)
    masks = [dilate_erode(offset_mask(m, x_offset, y_offset), dilate) for m in kept.masks]
    if merge == "none":
        keep = [i for i, m in enumerate(masks) if mask_bbox(m) is not None]
        return kept.select(keep), [masks[i] for i in keep]
    masks = [m for m in merge_masks(masks, merge) if mask_bbox(m) is not None]
    return kept, masks

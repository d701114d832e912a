"""From detections to region jobs: everything an inpainter needs to redraw one region, decided up front.

The plan does not know who inpaints (the host's img2img or diffusers): a job carries the sharp mask, the blur,
the crop box (the padded, blurred-mask bounding box widened to the inpaint aspect ratio, as A1111's "only masked"
mode computes it), the inpaint size, the prompts, the seed and the overrides.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image

from ..detection.result import Detections
from .args import PassArgs
from .masks import blur_mask, mask_bbox, prepare_masks
from .prompts import region_negatives, region_prompts

IntBox = tuple[int, int, int, int]
SEED_STRIDE_PER_PASS = 1000  # pass p, region r → seed + 1000·p + r: distinct and reproducible


@dataclass
class RegionJob:
    pass_index: int                 # 0-based position of the pass in the argument list
    region_index: int               # 0-based position in region order (skipped regions keep their number)
    mask: Image.Image               # 'L', full image size, 255 = redraw (before blur)
    prompt: str
    negative_prompt: str
    seed: int
    crop_box: IntBox                # the only pixels that may change
    inpaint_size: tuple[int, int]   # (width, height) the crop is redrawn at
    denoise: float
    mask_blur: int
    padding: int
    only_masked: bool
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None
    clip_skip: int | None = None
    kind: str = "other"             # face / hand / person / other

    def paste_mask(self) -> Image.Image:
        """The feathered mask the redrawn crop is pasted through."""
        return blur_mask(self.mask, self.mask_blur)


def region_seed(seed: int, pass_index: int, region_index: int) -> int:
    return (int(seed) + SEED_STRIDE_PER_PASS * pass_index + region_index) % (2 ** 32)


def _round8(v: float) -> int:
    return max(64, int(round(v / 8.0)) * 8)


def _grow(lo: int, hi: int, length: int, limit: int) -> tuple[int, int]:
    """Widen [lo, hi) to `length` around its centre, shifted to stay inside [0, limit)."""
    length = min(length, limit)
    lo -= (length - (hi - lo)) // 2
    hi = lo + length
    if lo < 0:
        lo, hi = 0, length
    if hi > limit:
        lo, hi = limit - length, limit
    return lo, hi


def expand_to_aspect(box: IntBox, aspect: float, size: tuple[int, int]) -> IntBox:
    """Widen `box` (never shrink it) to width/height == aspect where the image allows it."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if w / h < aspect:
        x1, x2 = _grow(x1, x2, math.ceil(h * aspect), size[0])
    elif w / h > aspect:
        y1, y2 = _grow(y1, y2, math.ceil(w / aspect), size[1])
    return x1, y1, x2, y2


def crop_and_size(mask: Image.Image, args: PassArgs) -> tuple[IntBox, tuple[int, int]]:
    """The crop box and inpaint size of one region mask."""
    size = mask.size
    if not args.inpaint_only_masked:
        # Whole-image mode redraws the full image at its own size (rounded to 8): no resolution boost.
        if args.match_box:
            return (0, 0) + size, _matched(size[0], size[1], args)
        return (0, 0) + size, (_round8(size[0]), _round8(size[1]))
    bb = mask_bbox(blur_mask(mask, args.mask_blur))
    x1, y1, x2, y2 = bb
    p = args.padding
    box = (max(x1 - p, 0), max(y1 - p, 0), min(x2 + p, size[0]), min(y2 + p, size[1]))
    if args.match_box:
        return box, _matched(box[2] - box[0], box[3] - box[1], args)
    target = (args.inpaint_width, args.inpaint_height)
    return expand_to_aspect(box, target[0] / target[1], size), target


def _matched(w: int, h: int, args: PassArgs) -> tuple[int, int]:
    # The box's aspect ratio at the area of inpaint_width × inpaint_height.
    area = args.inpaint_width * args.inpaint_height
    return _round8(math.sqrt(area * w / h)), _round8(math.sqrt(area * h / w))


def plan_pass(detections: Detections, args: PassArgs, pass_index: int, main_prompt: str = "",
              main_negative: str = "", seed: int = 0) -> list[RegionJob]:
    """The region jobs of one pass, in region order; regions whose prompt is `[SKIP]` get no job."""
    if not args.enabled:
        return []
    _, masks = prepare_masks(
        detections, confidence=args.confidence, min_ratio=args.min_ratio, max_ratio=args.max_ratio,
        top_k_count=args.top_k, top_k_by=args.top_k_by, order=args.order, x_offset=args.x_offset,
        y_offset=args.y_offset, dilate=args.dilate_erode, merge=args.merge)
    kind = args.kind()
    prompts = region_prompts(args.prompt, main_prompt, len(masks), kind, args.shot_swap)
    negatives = region_negatives(args.negative_prompt, main_negative, len(masks))
    jobs = []
    for r, (mask, prompt, negative) in enumerate(zip(masks, prompts, negatives)):
        if prompt is None:
            continue
        crop, inpaint_size = crop_and_size(mask, args)
        jobs.append(RegionJob(
            pass_index, r, mask, prompt, negative, region_seed(seed, pass_index, r), crop, inpaint_size,
            args.denoise, args.mask_blur, args.padding, args.inpaint_only_masked, args.steps, args.cfg_scale,
            args.sampler, args.clip_skip, kind))
    return jobs

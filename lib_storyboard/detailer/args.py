"""The settings of one detailer pass, validated (the project's one options style, `lib_storyboard.options`); the
API argument form; the JSON schema; the infotext form. Each field declares its UI label, range and step once; the
accordion's widgets read them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal
from collections.abc import Mapping, Sequence

from ..options import Options, OptionsError, option, validator
from .masks import MERGE_MODES, ORDERS, TOP_K_BY

SCRIPT_TITLE = "Storyboard detailer"
DETAIL_ONLY_KEY = f"{SCRIPT_TITLE} detail-only"   # the infotext key of img2img's detail-only mode
REGION_KINDS = ("auto", "face", "hand", "person", "other")


class DetailerArgsError(ValueError):
    """Bad detailer arguments; the message is one sentence naming the pass and the field."""


class PassArgs(Options):
    """One detailer pass: which detector, how its masks are shaped, and how each region is redrawn."""

    _what = "detailer pass option"

    enabled: bool = option(True, "Pass on", "Run this pass.")
    detector: str = option("face_yolov8n.pt", "Detector", "A mediapipe model name or a YOLO .pt file name (see "
                           "/detailer/models).", min_length=1)
    classes: str = option("", "Classes (multi-class YOLO, comma-separated)", "Labels to keep, for multi-class YOLO.")
    region_kind: Literal["auto", "face", "hand", "person", "other"] = option(
        "auto", "Regions are", "What the regions are, for the shot-token swap; auto guesses from the detector name.",
        widget="dropdown")
    confidence: float = option(0.3, "Confidence", "Minimum detection confidence.", ge=0.0, le=1.0, step=0.01)
    top_k: int = option(0, "Keep the k best (0: all)", "Keep only the k best detections (0: all).", ge=0, le=100)
    top_k_by: Literal["area", "confidence"] = option("area", "Best by", "What 'best' means for top_k.")
    min_ratio: float = option(0.0, "Min area ratio", "Smallest box area, as a fraction of the image.", ge=0.0,
                              le=1.0, step=0.001)
    max_ratio: float = option(1.0, "Max area ratio", "Largest box area, as a fraction of the image.", ge=0.0,
                              le=1.0, step=0.001)
    order: Literal["none", "left_to_right", "area", "confidence"] = option(
        "left_to_right", "Region order", "Region order, which decides which [SEP] prompt each region gets.",
        widget="dropdown")
    dilate_erode: int = option(4, "Dilate (+) / erode (-)", "Grow (>0) or shrink (<0) each mask, in pixels.",
                               ge=-128, le=128)
    x_offset: int = option(0, "X offset", "Move masks right (>0) or left, in pixels.", ge=-512, le=512)
    y_offset: int = option(0, "Y offset", "Move masks up (>0) or down, in pixels.", ge=-512, le=512)
    merge: Literal["none", "merge", "merge_invert"] = option(
        "none", "Masks", "Inpaint each region alone, all as one, or everything but them.")
    mask_blur: int = option(4, "Mask blur", "Feather of the pasted region's edge, in pixels.", ge=0, le=64)
    prompt: str = option("", "Prompt (empty: main prompt; [PROMPT], [SEP], [SKIP])",
                         "Empty: the main prompt. [PROMPT] inserts it, [SEP] splits per region, [SKIP] skips a "
                         "region.", lines=2)
    negative_prompt: str = option("", "Negative prompt (empty: main)",
                                  "Empty: the main negative prompt; [PROMPT] and [SEP] as above.")
    denoise: float = option(0.4, "Denoising strength", "Denoising strength of the region inpaint.", ge=0.0, le=1.0,
                            step=0.01)
    inpaint_only_masked: bool = option(True, "Only masked", "Redraw a padded crop around the region at inpaint size.")
    padding: int = option(32, "Padding", "Context around the region in the crop, in pixels.", ge=0, le=512, step=4)
    inpaint_width: int = option(512, "Inpaint width", "Inpaint width (multiple of 8).", ge=64, le=2048, step=8,
                                multiple_of=8)
    inpaint_height: int = option(512, "Inpaint height", "Inpaint height (multiple of 8).", ge=64, le=2048, step=8,
                                 multiple_of=8)
    match_box: bool = option(False, "Match the box's aspect ratio",
                             "Use the crop's aspect ratio at the area of width x height.")
    steps: int | None = option(None, "Steps", "Override the sampling steps (null: main's).", ge=1, le=150)
    cfg_scale: float | None = option(None, "CFG scale", "Override the CFG scale (null: main's).", ge=0.0, le=30.0,
                                     step=0.5)
    sampler: str | None = option(None, "Sampler", "Override the sampler name (null: main's).", min_length=1)
    clip_skip: int | None = option(None, "CLIP skip", "Override the CLIP skip (null: main's).", ge=1, le=12)
    shot_swap: bool = option(True, "Shot-token swap (face: <cu_trg>, hand: none)",
                             "Face regions get <cu_trg>, hand regions lose the shot token.")

    @validator("max_ratio")
    def _ratio_order(cls, v: float, values: dict) -> float:
        if values.get("min_ratio", 0.0) > v:
            raise ValueError("must not be below min_ratio")
        return v

    def class_list(self) -> list[str]:
        return [c.strip() for c in self.classes.split(",") if c.strip()]

    def kind(self) -> str:
        """The region kind, guessed from the detector name when 'auto' (mediapipe detectors are all faces)."""
        if self.region_kind != "auto":
            return self.region_kind
        name = self.detector.lower()
        for k in ("face", "hand", "person"):
            if k in name:
                return k
        return "other"


# Keep the Literal choices and the mask module's vocabularies the same list.
assert set(TOP_K_BY) == set(PassArgs.__fields__["top_k_by"].type_.__args__)
assert set(ORDERS) == set(PassArgs.__fields__["order"].type_.__args__)
assert set(MERGE_MODES) == set(PassArgs.__fields__["merge"].type_.__args__)


def parse_pass(data: Any, number: int = 1) -> PassArgs:
    """Validate one pass dict (never modified). `number` (1-based) goes into the error sentence."""
    where = f"{SCRIPT_TITLE} pass {number}"
    if isinstance(data, PassArgs):
        return data
    if not isinstance(data, Mapping):
        raise DetailerArgsError(f"{where}: expected a settings object, got {type(data).__name__}.")
    try:
        return PassArgs.from_dict(dict(data))
    except OptionsError as e:
        raise DetailerArgsError(f"{where}: {next(iter(e.errors.values()))}") from None


def parse_api_args(args: Sequence[Any]) -> tuple[bool, list[PassArgs]]:
    """`[enabled, {pass 1}, {pass 2}, ...]` → (enabled, passes). A missing leading bool means enabled; `None`
    entries (slots the API left at no value) are skipped. The input list and dicts are never modified."""
    items = list(args or [])
    enabled = True
    if items and isinstance(items[0], bool):
        enabled = items.pop(0)
    passes: list[PassArgs] = []
    for i, item in enumerate(items, 1):
        if item is None:
            continue
        if isinstance(item, bool):
            raise DetailerArgsError(f"{SCRIPT_TITLE}: argument {i + 1} is a boolean; only the first argument "
                                    f"may be one (the on/off switch).")
        passes.append(parse_pass(item, i))
    return enabled, passes


@dataclass(frozen=True)
class DetailerRun:
    """Everything one generation asks of the detailer: the master switch, the passes, and detail-only mode."""

    enabled: bool = False
    passes: list[PassArgs] = field(default_factory=list)
    detail_only: bool = False   # img2img: skip the base pass and detail the init image itself

    @property
    def active(self) -> bool:
        return self.enabled and any(p.enabled for p in self.passes)


def parse_script_args(args: Sequence[Any], max_passes: int | None = None, strict: bool = False) -> DetailerRun:
    """The script's argument slots `[enabled, {pass 1}, ..., {pass N}, detail_only]` → a `DetailerRun`.

    A boolean after the passes is the detail-only switch, wherever it sits: an API call may send
    `[true, {pass 1}, true]` although the host writes it over the slots of pass 2 and leaves the real detail-only
    slot at its default. So the first such boolean wins and later slots (the untouched defaults) are ignored; with
    `strict` (a request as the caller wrote it) anything after it, or more than `max_passes` passes, is an error.
    """
    items = list(args or [])
    cut = next((i for i, v in enumerate(items) if i > 0 and isinstance(v, bool)), len(items))
    enabled, passes = parse_api_args(items[:cut])
    tail = items[cut:]
    detail_only = bool(tail[0]) if tail else False
    if strict:
        if len(tail) > 1:
            raise DetailerArgsError(f"{SCRIPT_TITLE}: the detail-only switch (argument {cut + 1}) must be the last "
                                    f"argument, after the passes.")
        if max_passes is not None and len(passes) > max_passes:
            raise DetailerArgsError(f"{SCRIPT_TITLE}: {len(passes)} passes were given but this host allows at most "
                                    f"{max_passes} (setting 'Detailer passes').")
    return DetailerRun(enabled, passes, detail_only)


def json_schema(max_passes: int | None = None) -> dict:
    """JSON schema of the API argument list, for `GET /storyboard/v1/detailer/schema`."""
    schema = {
        "title": SCRIPT_TITLE,
        "description": ('alwayson_scripts: {"%s": {"args": [enabled, {pass 1}, {pass 2}, ..., detail_only]}}; '
                        'enabled switches the detailer on, each object is one pass, and the optional boolean after '
                        'the passes (img2img only) skips the base img2img and details the init image itself.'
                        % SCRIPT_TITLE),
        "type": "array",
        "prefixItems": [{"type": "boolean", "description": "Master switch."}],
        "items": PassArgs.schema(),
    }
    if max_passes is not None:
        schema["maxPasses"] = max_passes
        schema["maxItems"] = max_passes + 2
    return schema


INFOTEXT_KEY = SCRIPT_TITLE


def pass_to_infotext(p: PassArgs) -> str:
    """The pass's non-default settings (plus the detector, always) as compact JSON."""
    d = p.non_defaults()
    d = {"detector": p.detector, **{k: v for k, v in d.items() if k != "detector"}}
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def pass_from_infotext(text: str, number: int = 1) -> PassArgs:
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        raise DetailerArgsError(f"{SCRIPT_TITLE} pass {number}: the infotext value is not valid JSON.") from None
    return parse_pass(data, number)


def to_infotext(passes: Sequence[PassArgs]) -> dict:
    """Infotext entries for the enabled passes: {"Storyboard detailer 1": "{...}", ...} (numbered by position)."""
    return {f"{INFOTEXT_KEY} {i}": pass_to_infotext(p) for i, p in enumerate(passes, 1) if p.enabled}


def from_infotext(params: Mapping[str, str]) -> list[tuple[int, PassArgs]]:
    """(pass number, settings) for every detailer entry found among parsed infotext `params`."""
    out = []
    prefix = INFOTEXT_KEY + " "
    for key, value in params.items():
        if key.startswith(prefix) and key[len(prefix):].isdigit():
            number = int(key[len(prefix):])
            out.append((number, pass_from_infotext(value, number)))
    return sorted(out, key=lambda t: t[0])

"""The settings of one detailer pass, validated; the API argument form; the JSON schema; the infotext form.

Imports only pydantic's v1 API, which pydantic 2 still ships as `pydantic.v1`, so the same model runs on the
host's pydantic 1.10 and on hosts with pydantic 2. Unknown keys are refused: a typo in an API call must not be
silently ignored.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, List, Literal, Mapping, Optional, Sequence, Tuple

try:
    from pydantic.v1 import BaseModel, Extra, Field, ValidationError, root_validator, validator
except ImportError:  # pydantic < 1.10.17 has no v1 namespace
    from pydantic import BaseModel, Extra, Field, ValidationError, root_validator, validator  # type: ignore

from .masks import MERGE_MODES, ORDERS, TOP_K_BY

SCRIPT_TITLE = "Storyboard detailer"
REGION_KINDS = ("auto", "face", "hand", "person", "other")


class DetailerArgsError(ValueError):
    """Bad detailer arguments; the message is one sentence naming the pass and the field."""


class PassArgs(BaseModel):
    """One detailer pass: which detector, how its masks are shaped, and how each region is redrawn."""

    enabled: bool = Field(True, description="Run this pass.")
    detector: str = Field("face_yolov8n.pt", min_length=1,
                          description="A mediapipe model name or a YOLO .pt file name (see /detailer/models).")
    classes: str = Field("", description="Comma-separated labels to keep, for multi-class YOLO models.")
    region_kind: Literal["auto", "face", "hand", "person", "other"] = Field(
        "auto", description="What the regions are, for the shot-token swap; auto guesses from the detector name.")
    confidence: float = Field(0.3, ge=0.0, le=1.0, description="Minimum detection confidence.")
    top_k: int = Field(0, ge=0, le=100, description="Keep only the k best detections (0: all).")
    top_k_by: Literal["area", "confidence"] = Field("area", description="What 'best' means for top_k.")
    min_ratio: float = Field(0.0, ge=0.0, le=1.0, description="Smallest box area, as a fraction of the image.")
    max_ratio: float = Field(1.0, ge=0.0, le=1.0, description="Largest box area, as a fraction of the image.")
    order: Literal["none", "left_to_right", "area", "confidence"] = Field(
        "left_to_right", description="Region order, which decides which [SEP] prompt each region gets.")
    dilate_erode: int = Field(4, ge=-128, le=128, description="Grow (>0) or shrink (<0) each mask, in pixels.")
    x_offset: int = Field(0, ge=-512, le=512, description="Move masks right (>0) or left, in pixels.")
    y_offset: int = Field(0, ge=-512, le=512, description="Move masks up (>0) or down, in pixels.")
    merge: Literal["none", "merge", "merge_invert"] = Field(
        "none", description="Inpaint each region alone, all as one, or everything but them.")
    mask_blur: int = Field(4, ge=0, le=64, description="Feather of the pasted region's edge, in pixels.")
    prompt: str = Field("", description="Empty: the main prompt. [PROMPT] inserts it, [SEP] splits per region, "
                                        "[SKIP] skips a region.")
    negative_prompt: str = Field("", description="Empty: the main negative prompt; [PROMPT] and [SEP] as above.")
    denoise: float = Field(0.4, ge=0.0, le=1.0, description="Denoising strength of the region inpaint.")
    inpaint_only_masked: bool = Field(True, description="Redraw a padded crop around the region at inpaint size.")
    padding: int = Field(32, ge=0, le=512, description="Context around the region in the crop, in pixels.")
    inpaint_width: int = Field(512, ge=64, le=2048, description="Inpaint width (multiple of 8).")
    inpaint_height: int = Field(512, ge=64, le=2048, description="Inpaint height (multiple of 8).")
    match_box: bool = Field(False, description="Use the crop's aspect ratio at the area of width x height.")
    steps: Optional[int] = Field(None, ge=1, le=150, description="Override the sampling steps (null: main's).")
    cfg_scale: Optional[float] = Field(None, ge=0.0, le=30.0, description="Override the CFG scale (null: main's).")
    sampler: Optional[str] = Field(None, min_length=1, description="Override the sampler name (null: main's).")
    clip_skip: Optional[int] = Field(None, ge=1, le=12, description="Override the CLIP skip (null: main's).")
    shot_swap: bool = Field(True, description="Face regions get <cu_trg>, hand regions lose the shot token.")

    class Config:
        extra = Extra.forbid
        validate_assignment = True
        allow_mutation = False

    @validator("top_k", "dilate_erode", "x_offset", "y_offset", "mask_blur", "padding", "inpaint_width",
               "inpaint_height", "steps", "clip_skip", pre=True)
    def _whole_number(cls, v: Any) -> Any:
        # pydantic 1 would turn 3.7 into 3 and True into 1 without a word.
        if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
            raise ValueError("must be a whole number")
        return v

    @validator("inpaint_width", "inpaint_height")
    def _multiple_of_8(cls, v: int) -> int:
        if v % 8:
            raise ValueError("must be a multiple of 8")
        return v

    @root_validator(skip_on_failure=True)
    def _ratio_order(cls, values: dict) -> dict:
        if values["min_ratio"] > values["max_ratio"]:
            raise ValueError("min_ratio must not exceed max_ratio")
        return values

    def class_list(self) -> List[str]:
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

    def non_defaults(self) -> dict:
        defaults = PassArgs()
        return {k: v for k, v in self.dict().items() if v != getattr(defaults, k)}


# Keep the Literal choices and the mask module's vocabularies the same list.
assert set(TOP_K_BY) == set(PassArgs.__fields__["top_k_by"].type_.__args__)
assert set(ORDERS) == set(PassArgs.__fields__["order"].type_.__args__)
assert set(MERGE_MODES) == set(PassArgs.__fields__["merge"].type_.__args__)


def _sentence(err: ValidationError, where: str) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"] if p != "__root__")
    msg = first["msg"]
    if first["type"] == "value_error.extra":
        return f"{where}: unknown field {field!r}."
    if field:
        return f"{where}: field {field!r}: {msg}."
    return f"{where}: {msg}."


def parse_pass(data: Any, number: int = 1) -> PassArgs:
    """Validate one pass dict (never modified). `number` (1-based) goes into the error sentence."""
    where = f"{SCRIPT_TITLE} pass {number}"
    if isinstance(data, PassArgs):
        return data
    if not isinstance(data, Mapping):
        raise DetailerArgsError(f"{where}: expected a settings object, got {type(data).__name__}.")
    try:
        return PassArgs(**dict(data))
    except ValidationError as e:
        raise DetailerArgsError(_sentence(e, where)) from None


def parse_api_args(args: Sequence[Any]) -> Tuple[bool, List[PassArgs]]:
    """`[enabled, {pass 1}, {pass 2}, ...]` → (enabled, passes). A missing leading bool means enabled; `None`
    entries (slots the API left at no value) are skipped. The input list and dicts are never modified."""
    items = list(args or [])
    enabled = True
    if items and isinstance(items[0], bool):
        enabled = items.pop(0)
    passes: List[PassArgs] = []
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
    passes: List[PassArgs] = field(default_factory=list)
    detail_only: bool = False   # img2img: skip the base pass and detail the init image itself

    @property
    def active(self) -> bool:
        return self.enabled and any(p.enabled for p in self.passes)


def parse_script_args(args: Sequence[Any], max_passes: Optional[int] = None, strict: bool = False) -> DetailerRun:
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


def json_schema(max_passes: Optional[int] = None) -> dict:
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


def from_infotext(params: Mapping[str, str]) -> List[Tuple[int, PassArgs]]:
    """(pass number, settings) for every detailer entry found among parsed infotext `params`."""
    out = []
    prefix = INFOTEXT_KEY + " "
    for key, value in params.items():
        if key.startswith(prefix) and key[len(prefix):].isdigit():
            number = int(key[len(prefix):])
            out.append((number, pass_from_infotext(value, number)))
    return sorted(out, key=lambda t: t[0])

"""Composition in txt2img and img2img: the Storyboard triggers accordion's pose goes to sd-webui-controlnet as one
extra ControlNet unit, so `<ms_trg>` with the pose "sitting" draws a seated figure at medium-shot framing.

A drawn pose is framed as the prompt's shot trigger (no trigger: no pose, and a comment says so); a reference pose
(an OpenPose image made in the Storyboard tab's Compose section, or any OpenPose map) is used as it is. The unit
goes into the first ControlNet slot the user has not enabled, in `before_process`, before ControlNet reads its
units in `process` whatever the scripts' order.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from PIL import Image

from .. import shots
from ..composition import COMPOSITIONS, FRAMING, POSES, pose_image
from ..composition.extract import extract_pose, load_openpose
from ..composition.panel import panel_pose
from . import controlnet_bridge
from .comments import problem

TRIGGERS_TITLE = "Storyboard triggers"
REFERENCE = "reference"
CHOICES = COMPOSITIONS + (REFERENCE,)
WEIGHT_MAX = 2.0
SIZE_RANGE = (8, 2048)
POSE_FIELDS = ("pose", "shot", "width", "height", "image")
_detector: list = []     # the OpenPose detector, loaded once: its weights are ~200 MB
# The triggers script's arguments after its storyboard model, in this order (the API's "args" list too).
ARG_NAMES = ("composition", "composition_weight", "controlnet_model", "pose_image")


@dataclass(frozen=True)
class Composition:
    pose: str                      # "none", a drawn pose, or "reference"
    weight: float = 1.0
    model: str | None = None       # the ControlNet model as the extension lists it
    image: Image.Image | None = None

    @property
    def active(self) -> bool:
        return self.pose != "none"


def _image(value) -> Image.Image | None:
    """A pose image from the UI (PIL, numpy) or the API (base64 text, with or without a data: prefix)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, Image.Image):
        return value.convert("RGB")
    if isinstance(value, str):
        data = value.split(",", 1)[1] if value.startswith("data:") else value
        try:
            with Image.open(io.BytesIO(base64.b64decode(data, validate=True))) as im:
                return im.convert("RGB")
        except Exception as e:
            raise ValueError(f"{TRIGGERS_TITLE}: the pose image is not a base64-encoded PNG or JPEG "
                             f"({type(e).__name__}).") from None
    try:
        import numpy as np

        return Image.fromarray(np.asarray(value, dtype=np.uint8)).convert("RGB")
    except Exception:
        raise ValueError(f"{TRIGGERS_TITLE}: the pose image must be an image (base64 text over the API), not "
                         f"{type(value).__name__}.") from None


def parse(args) -> Composition:
    """The triggers script's composition arguments → Composition, or ValueError with one sentence."""
    values = dict(zip(ARG_NAMES, list(args or [])))
    pose = values.get("composition") or "none"
    if not isinstance(pose, str) or pose.strip().lower() not in CHOICES:
        raise ValueError(f"{TRIGGERS_TITLE}: composition must be one of {', '.join(CHOICES)}, not {pose!r}.")
    pose = pose.strip().lower()
    weight = values.get("composition_weight")
    weight = 1.0 if weight is None else weight
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= WEIGHT_MAX:
        raise ValueError(f"{TRIGGERS_TITLE}: composition_weight must be a number from 0 to {WEIGHT_MAX:g}, "
                         f"not {weight!r}.")
    model = values.get("controlnet_model") or None
    if model is not None and not isinstance(model, str):
        raise ValueError(f"{TRIGGERS_TITLE}: controlnet_model must be the name of a ControlNet model.")
    if pose == "none":
        return Composition("none", float(weight))
    image = _image(values.get("pose_image")) if pose == REFERENCE else None   # decoded only where it is used
    if pose == REFERENCE and image is None:
        raise ValueError(f"{TRIGGERS_TITLE}: the composition 'reference' needs a pose image (make one in the "
                         f"Storyboard tab's Compose section, or send an OpenPose image as pose_image).")
    if not controlnet_bridge.available():
        raise ValueError(controlnet_bridge.MISSING)
    try:
        chosen = controlnet_bridge.choose_model(model)
    except ValueError as e:
        raise ValueError(f"{TRIGGERS_TITLE}: {e}") from None
    return Composition(pose, float(weight), chosen, image)


def make_pose(pose: str, shot: str, width: int, height: int, reference: Image.Image | None = None) -> Image.Image:
    """A drawn pose at a shot's framing or, given a `reference` photo, the pose of its people at width × height;
    ValueError with one sentence (an unknown pose or shot, missing detector weights)."""
    if reference is None:
        return pose_image(pose, shot, width, height)
    if not _detector:
        _detector.append(load_openpose())
    return extract_pose(reference, (width, height), detector=_detector[0])


def pose_request(body) -> tuple[dict, dict]:
    """`POST /pose`'s body → (make_pose's arguments, {field: one sentence} for every bad field)."""
    if not isinstance(body, dict):
        return {}, {"": "The request body must be a JSON object: pose and shot, or image (base64), and width, "
                        "height."}
    errors = {k: f"{k!r} is not a pose field (use {', '.join(POSE_FIELDS)})." for k in body if k not in POSE_FIELDS}
    out = {"pose": body.get("pose", "standing"), "shot": body.get("shot", "ms")}
    for key in ("width", "height"):
        v = body.get(key, 512)
        if isinstance(v, bool) or not isinstance(v, int) or not SIZE_RANGE[0] <= v <= SIZE_RANGE[1]:
            errors[key] = f"{key} must be a whole number of pixels from {SIZE_RANGE[0]} to {SIZE_RANGE[1]}."
        out[key] = v
    if out["pose"] not in POSES:
        errors["pose"] = f"Unknown pose {out['pose']!r}; choose one of {', '.join(POSES)}."
    if out["shot"] not in FRAMING:
        errors["shot"] = f"Unknown shot {out['shot']!r}; choose one of {', '.join(FRAMING)}."
    try:
        out["reference"] = _image(body.get("image"))
    except ValueError:
        errors["image"] = "image must be a base64-encoded PNG or JPEG photo."
    return out, errors


def request_error(body) -> str | None:
    """The one-sentence problem with a txt2img/img2img request's composition arguments, or None."""
    scripts_arg = body.get("alwayson_scripts") if isinstance(body, dict) else None
    if not isinstance(scripts_arg, dict):
        return None
    for name, entry in scripts_arg.items():
        if str(name).lower() != TRIGGERS_TITLE.lower() or not isinstance(entry, dict):
            continue
        args = entry.get("args")
        if not isinstance(args, list):
            return f'{TRIGGERS_TITLE}: "args" must be a list: [storyboard model, {", ".join(ARG_NAMES)}].'
        try:
            parse(args[1:])
        except ValueError as e:
            return str(e)
    return None


def _first_prompt(p) -> str:
    prompt = p.prompt
    return (prompt[0] if prompt else "") if isinstance(prompt, list) else (prompt or "")


def apply(p, args) -> None:
    """In `before_process`: put the composition's ControlNet unit into `p.script_args`. A problem the request
    check could not catch (the UI has none) becomes one comment, and the image is drawn without the pose."""
    try:
        comp = parse(args)
    except ValueError as e:
        problem(p, str(e))
        return
    if not comp.active:
        return
    if comp.pose == REFERENCE:
        image = comp.image
    else:
        image = panel_pose(comp.pose, _first_prompt(p), int(p.width), int(p.height))
        if image is None:
            problem(p, f"The composition '{comp.pose}' is framed by the prompt's shot trigger, and the prompt has "
                       f"none ({', '.join(shots.TRIGGERS)}); it was drawn without the pose.")
            return
    try:
        p.script_args = controlnet_bridge.with_unit(p.script_args, image, comp.model, comp.weight)
    except ValueError as e:
        problem(p, str(e))
        return
    p.extra_generation_params["Storyboard composition"] = comp.pose
    if comp.weight != 1.0:
        p.extra_generation_params["Storyboard composition weight"] = comp.weight


__all__ = ["ARG_NAMES", "CHOICES", "Composition", "POSES", "REFERENCE", "apply", "make_pose", "parse", "pose_request",
           "request_error"]

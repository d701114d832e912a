"""Pose references to the ControlNet extension (Mikubill/sd-webui-controlnet) through its public API: its
`external_code` module (as it documents for other extensions), its model list, and `ControlNetUnit`s put into its
always-on script's arguments. The pose image is already an OpenPose map, so the unit's preprocessor is "none".

Checked against sd-webui-controlnet v1.1.455 (API version 3) on A1111 v1.10.1.
"""
from __future__ import annotations

import importlib
import os
import sys

import numpy as np
from modules import extensions, scripts

SCRIPT_TITLE = "ControlNet"
EXTENSION = "sd-webui-controlnet"
MISSING = ("Composition sends a pose to ControlNet, which this WebUI does not have: install "
           "sd-webui-controlnet (Extensions tab) and an openpose ControlNet model, then restart the WebUI.")


def external_code():
    """The extension's external_code module, or None when it is not installed, is disabled or failed to load."""
    if script() is None:
        return None
    mod = sys.modules.get("internal_controlnet.external_code")   # imported by its scripts when they loaded
    if mod is not None:
        return mod
    for ext in extensions.active():
        if os.path.isfile(os.path.join(ext.path, "scripts", "external_code.py")):
            try:   # the import its README gives other extensions (the folder under extensions/ is the package)
                return importlib.import_module(f"extensions.{ext.name}.scripts.external_code")
            except Exception:   # another extension's file of the same name, or one that does not import here
                continue
    return None


def script():
    """The extension's always-on txt2img script (None without it)."""
    runner = scripts.scripts_txt2img
    return next((s for s in getattr(runner, "alwayson_scripts", []) if s.title().lower() == SCRIPT_TITLE.lower()),
                None)


def available() -> bool:
    return external_code() is not None


def models() -> list[str]:
    """Every ControlNet model the extension lists ("name [hash]"), refreshed from its folders."""
    ec = external_code()
    if ec is None:
        return []
    return [m for m in ec.get_models(update=True) if m and m != "None"]


def openpose_models() -> list[str]:
    return [m for m in models() if "openpose" in m.lower()]


def resolve_model(name: str) -> str | None:
    """The listed model `name` names: its listed form ("name [hash]") or its name without the hash."""
    listed = models()
    if name in listed:
        return name
    by_stem = {m.rsplit(" [", 1)[0].lower(): m for m in listed}
    return by_stem.get(str(name).strip().lower())


def default_model() -> str | None:
    found = openpose_models()
    return found[0] if found else None


def choose_model(name: str | None) -> str:
    """The listed model `name` names or, without a name, the first openpose model; ValueError with one sentence
    when there is none."""
    if not name:
        chosen = default_model()
        if chosen is None:
            raise ValueError("Composition needs an openpose ControlNet model and sd-webui-controlnet lists none; put "
                             "one (such as control_v11p_sd15_openpose) in models/ControlNet.")
        return chosen
    chosen = resolve_model(name)
    if chosen is None:
        listed = models()
        raise ValueError(f"{name!r} is not a ControlNet model of this WebUI; choose one of {', '.join(listed)}."
                         if listed else f"{name!r} is not a ControlNet model of this WebUI, which lists none; put an "
                         f"openpose model in models/ControlNet.")
    return chosen


def unit(pose, model: str, weight: float):
    """One enabled ControlNet unit guiding by `pose` (a PIL image the size of the panel)."""
    ec = external_code()
    return ec.ControlNetUnit(enabled=True, module="none", model=model, weight=float(weight),
                             image=np.asarray(pose.convert("RGB")), resize_mode="Crop and Resize",
                             pixel_perfect=False, guidance_start=0.0, guidance_end=1.0, control_mode="Balanced")


def _enabled(arg) -> bool:
    """Whether a ControlNet script argument is a unit in use (UI units are objects, API units dicts)."""
    return bool(arg.get("enabled")) if isinstance(arg, dict) else bool(getattr(arg, "enabled", False))


def with_unit(args, pose, model: str, weight: float) -> tuple:
    """Script args with `pose`'s unit in the ControlNet script's first slot not in use; the user's own enabled
    units stay as they are."""
    s = script()
    if s is None or s.args_from is None or s.args_to is None or s.args_to <= s.args_from:
        raise ValueError(MISSING)
    out = list(args)
    free = next((i for i in range(s.args_from, min(s.args_to, len(out))) if not _enabled(out[i])), None)
    if free is None:
        raise ValueError(f"Every ControlNet unit is in use ({s.args_to - s.args_from}), so the composition's pose "
                         f"was not added; turn one off, or raise the unit count in ControlNet's settings.")
    out[free] = unit(pose, model, weight)
    return tuple(out)

"""The flat form of a pass, as a UI holds it in widgets: each optional override (steps, CFG, sampler, clip skip) is
a "use" switch plus a value, where the pass dict has the value or None. Both directions, so that the widgets, the
pass dict the script receives and pasted infotext stay one and the same thing.
"""
from __future__ import annotations

from typing import Any
from collections.abc import Sequence

from .args import PassArgs

# Override → (switch label, value shown while the switch is off).
OPTIONAL: dict[str, tuple] = {"steps": ("Separate steps", 20), "cfg_scale": ("Separate CFG scale", 7.0),
                              "sampler": ("Separate sampler", "Euler a"), "clip_skip": ("Separate CLIP skip", 2)}
INT_FIELDS = {"top_k", "dilate_erode", "x_offset", "y_offset", "mask_blur", "padding", "inpaint_width",
              "inpaint_height", "steps", "clip_skip"}


def form_keys() -> list:
    """Every form field: the pass fields plus one `use_<override>` switch per optional override."""
    return list(PassArgs.__fields__) + [f"use_{k}" for k in OPTIONAL]


def form_to_pass(keys: Sequence[str], values: Sequence[Any]) -> dict:
    """Form values (in `keys` order) → the pass dict the script receives (the API's form). Not validated here:
    a bad combination is reported when the generation starts."""
    d = dict(zip(keys, values))
    for key in OPTIONAL:
        use = bool(d.pop(f"use_{key}", False))
        if key in d:
            d[key] = d[key] if use else None
    for key in INT_FIELDS:
        if isinstance(d.get(key), float) and d[key].is_integer():
            d[key] = int(d[key])  # sliders hand back floats
    return d


def pass_to_form(p: PassArgs) -> dict[str, Any]:
    """A pass → the value of every form field; the inverse of `form_to_pass`."""
    d = p.dict()
    for key, (_, shown) in OPTIONAL.items():
        d[f"use_{key}"] = d[key] is not None
        if d[key] is None:
            d[key] = shown
    return d

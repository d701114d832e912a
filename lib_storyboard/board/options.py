"""The options of one board request, declared once (label, range, help) for the CLI, the tab and the API."""
from __future__ import annotations

import os
from typing import Literal

from ..options import Options, OptionsError, option, validator

BoardError = OptionsError   # the name the board code and its callers use


class BoardOptions(Options):
    _what = "board option"

    title: str = option("", "Board title", "Shown on the board and the PDF pages; names the board's folder.",
                        max_length=200)
    prefix: str = option("", "Shared prompt (character, style)", "Put after the shot trigger in every panel's "
                         "prompt, so every panel draws the same character and style.", lines=2, max_length=2000)
    negative: str = option("", "Shared negative prompt", "Every panel's negative, before the scene's own.", lines=2,
                           max_length=2000)
    seed_policy: Literal["fixed", "per_panel"] = option(
        "fixed", "Seed policy", "fixed: every panel uses the base seed (a consistent character); per_panel: base "
        "seed + panel index. A scene's own seed wins either way.")
    seed: int = option(0, "Base seed", ge=0, le=2**32 - 1, widget="number")
    steps: int = option(20, "Sampling steps", ge=1, le=150)
    cfg: float = option(7.0, "CFG scale", ge=1.0, le=30.0, step=0.5)
    width: int = option(512, "Panel width (generated, px)", ge=64, le=2048, step=8, multiple_of=8)
    height: int = option(512, "Panel height (generated, px)", ge=64, le=2048, step=8, multiple_of=8)
    columns: int = option(3, "Board columns", ge=1, le=8)
    panel_width: int = option(256, "Panel width on the board (px)", "Panels are scaled to this width on the board "
                              "and in the PDF; the panel files keep their generated size.", ge=64, le=1024, step=8)
    panels_per_page: int = option(6, "Panels per PDF page", ge=1, le=24)
    font_size: int = option(14, "Caption font size (px)", ge=8, le=48)
    composition: Literal["none", "standing", "sitting", "walking", "two"] = option(
        "none", "Composition (ControlNet pose)", "An OpenPose skeleton in this pose, framed as each panel's shot, "
        "guides the panel through an openpose ControlNet; panels without a shot are drawn as they are.")
    composition_weight: float = option(1.0, "Composition weight", "The ControlNet's strength.", ge=0.0, le=2.0,
                                       step=0.05)
    font_path: str = option("", "Font file", "A TrueType/OpenType font for the labels and captions; empty: the "
                            "first installed system font that has every character.")

    @validator("font_path")
    def _font_file(cls, v: str) -> str:
        if v and not os.path.isfile(v):
            raise ValueError(f"The font file {v} does not exist")
        return v

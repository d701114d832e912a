"""The options of one dataset build, declared once (label, range, help) for the CLI, the tab and the API."""
from __future__ import annotations

from typing import Literal

from ..options import Options, option

SketchStyle = Literal["none", "canny", "lineart_standard", "hed", "lineart", "pidinet"]


class DatasetOptions(Options):
    _what = "dataset option"

    source: str = option("", "Source", "A folder of photos, film stills or videos (sub-folders included), or one "
                         "video file.", min_length=1, max_length=4096)
    out: str = option("", "Output folder", "A new or empty folder; the dataset, its report and contact sheet are "
                      "written only inside it.", min_length=1, max_length=4096)
    sketch: SketchStyle = option("lineart_standard", "Sketch style", "canny and lineart_standard need no weights; "
                                 "hed, lineart and pidinet download annotator weights on first use; none keeps "
                                 "the photos.")
    frames_per_cut: int = option(1, "Frames per cut", "Video: at most this many frames from each shot.",
                                 ge=1, le=50)
    max_frames_per_video: int = option(0, "Frames per video", "Video: at most this many frames in all (0: no "
                                       "limit).", ge=0, le=100000, widget="number")
    dedupe: bool = option(True, "Drop near-duplicates", "Leave out images that look like one already taken.")
    min_confidence: float = option(0.5, "Minimum shot confidence", "Images whose shot the classifier is less "
                                   "sure of are left out (and listed in the report).", ge=0.0, le=1.0, step=0.05)
    repeats: int = option(10, "Repeats", "The kohya-style repeat count in the folder names (10_cu).", ge=1, le=100)
    prefix: str = option("", "Tag prefix", "Comma-separated tags put on every image after the shot tag (a "
                         "character, a style).", max_length=2000)
    blacklist: str = option("", "Tag blacklist", "Comma-separated tags never written.", max_length=4000)
    max_side: int = option(1024, "Longest side (px)", "Larger images are scaled down to this.", ge=256, le=4096,
                           step=64)

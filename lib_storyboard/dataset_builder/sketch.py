"""Photos and film stills to sketches: dark lines on white paper, the look the shot tokens are trained on.

Through controlnet-aux when it is installed (the card's annotators). Canny and standard line art need no weights,
so they always work offline (with an OpenCV version of each when controlnet-aux is absent); HED, line art and
PiDiNet need annotator weights from the Hugging Face hub, fetched by controlnet-aux's own download on first use, or
read from the hub cache / a local folder when downloads are off.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np
from PIL import Image

HUB_REPO = "lllyasviel/Annotators"
WEIGHTLESS = ("canny", "lineart_standard")
WEIGHTED = {  # style → (controlnet_aux class, what it draws)
    "hed": ("HEDdetector", "soft HED edges"),
    "lineart": ("LineartDetector", "learned line art"),
    "pidinet": ("PidiNetDetector", "PiDiNet edges"),
}
STYLES = WEIGHTLESS + tuple(WEIGHTED)


def has_controlnet_aux() -> bool:
    return importlib.util.find_spec("controlnet_aux") is not None


def _import_aux():
    """controlnet_aux imports all its annotators (timm among them), which warn about deprecated timm paths and
    registry overwrites: noise for our users, not something they can act on."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import controlnet_aux
    return controlnet_aux


def _paper(lines: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """White-on-black line strength (any size, 1 or 3 channels) → black lines on white at `size`, RGB."""
    if lines.ndim == 3:
        lines = lines.max(axis=2)
    im = Image.fromarray(255 - lines.astype(np.uint8), "L")
    if im.size != size:
        im = im.resize(size, Image.BICUBIC)
    return im.convert("RGB")


def _canny_cv(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.Canny(rgb, 100, 200)


def _lineart_cv(rgb: np.ndarray) -> np.ndarray:
    """Dark strokes: how much darker each pixel is than its blurred surroundings, scaled by the typical stroke."""
    import cv2

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    darker = np.clip(cv2.GaussianBlur(grey, (0, 0), 6.0) - grey, 0, None)
    strokes = darker[darker > 8]
    scale = max(16.0, float(np.median(strokes))) if strokes.size else 16.0
    return np.clip(darker * (127.0 / scale), 0, 255).astype(np.uint8)


class Sketcher:
    """Converts images in one style; weighted annotators are loaded once, on construction.

    allow_download=False (the WebUI's --storyboard-no-download, or offline mode) reads weights only from the hub
    cache or `weights_dir`, and refuses with one sentence when they are not there.
    """

    def __init__(self, style: str = "lineart_standard", allow_download: bool = True, weights_dir: str | None = None,
                 cache_dir: str | None = None, use_controlnet_aux: bool | None = None) -> None:
        if style not in STYLES:
            raise ValueError(f"Unknown sketch style {style!r}; choose one of {', '.join(STYLES)}.")
        self.style = style
        self.aux = has_controlnet_aux() if use_controlnet_aux is None else use_controlnet_aux
        self._detector = None
        if style in WEIGHTED:
            self._detector = self._load_weighted(style, allow_download, weights_dir, cache_dir)
        elif self.aux:
            controlnet_aux = _import_aux()
            self._detector = (controlnet_aux.CannyDetector() if style == "canny"
                              else controlnet_aux.LineartStandardDetector())

    def _load_weighted(self, style, allow_download, weights_dir, cache_dir):
        cls_name, what = WEIGHTED[style]
        if not self.aux:
            raise ValueError(f"The {style} sketch style ({what}) needs controlnet-aux, which is not installed; "
                             f"use canny or lineart_standard.")
        cls = getattr(_import_aux(), cls_name)
        if weights_dir and not os.path.isdir(weights_dir):
            raise ValueError(f"The annotator weights folder {weights_dir} does not exist.")
        offline = not allow_download or os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        try:
            return cls.from_pretrained(weights_dir or HUB_REPO, cache_dir=cache_dir, local_files_only=offline)
        except Exception as e:  # hub, offline-mode and file errors all mean "the weights are not here"
            need = f"The {style} sketch style needs annotator weights from {HUB_REPO}"
            if weights_dir:
                why = f"{need}, which are not in {weights_dir} ({type(e).__name__}); use canny or lineart_standard."
            elif offline:
                why = (f"{need}, which are not in the hub cache, and downloads are off; use canny or "
                       f"lineart_standard, or allow downloads once.")
            else:
                why = (f"{need} and the download failed ({type(e).__name__}); use canny or lineart_standard, or "
                       f"try again when the hub is reachable.")
            raise ValueError(why) from e

    def __call__(self, image: Image.Image) -> Image.Image:
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
        res = max(64, min(1024, min(image.size)))  # the annotators' working size: the short side, within limits
        if self._detector is None:
            lines = _canny_cv(rgb) if self.style == "canny" else _lineart_cv(rgb)
        elif self.style == "lineart_standard":
            lines = np.asarray(self._detector(rgb, detect_resolution=res, output_type="np"))
        else:
            lines = np.asarray(self._detector(rgb, detect_resolution=res, image_resolution=res, output_type="np"))
        return _paper(lines, image.size)

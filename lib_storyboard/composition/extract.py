"""A pose image from the user's own reference photo, through controlnet-aux's OpenPose detector.

The detector's weights come from the Hugging Face hub (lllyasviel/Annotators: body, hand and face models) through
controlnet-aux's own download on first use; with downloads off (or HF_HUB_OFFLINE set) only the hub cache or a
local folder is read, and missing weights are refused in one sentence.
"""
from __future__ import annotations

import os

from PIL import Image

from ..dataset_builder.sketch import HUB_REPO, _import_aux, has_controlnet_aux


def hub_offline(allow_download: bool = True) -> bool:
    return not allow_download or os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def load_openpose(allow_download: bool = True, weights_dir: str | None = None, cache_dir: str | None = None):
    """controlnet-aux's OpenposeDetector, or ValueError with one sentence saying why not."""
    if not has_controlnet_aux():
        raise ValueError("Extracting a pose from a reference image needs controlnet-aux, which is not installed; "
                         "use a drawn pose (standing, sitting, walking, two) instead.")
    if weights_dir and not os.path.isdir(weights_dir):
        raise ValueError(f"The pose detector weights folder {weights_dir} does not exist.")
    offline = hub_offline(allow_download)
    try:
        return _import_aux().OpenposeDetector.from_pretrained(weights_dir or HUB_REPO, cache_dir=cache_dir,
                                                              local_files_only=offline)
    except Exception as e:  # hub, offline-mode and file errors all mean "the weights are not here"
        need = f"The pose detector needs OpenPose weights from {HUB_REPO}"
        if weights_dir:
            raise ValueError(f"{need}, which are not in {weights_dir} ({type(e).__name__}); use a drawn pose "
                             f"instead.") from e
        if offline:
            raise ValueError(f"{need}, which are not in the hub cache, and downloads are off; use a drawn pose "
                             f"instead, or allow downloads once.") from e
        raise ValueError(f"{need} and the download failed ({type(e).__name__}); use a drawn pose instead, or try "
                         f"again when the hub is reachable.") from e


def extract_pose(image: Image.Image, size: tuple[int, int] | None = None, detector=None, **load) -> Image.Image:
    """The OpenPose-format image of the people in `image` (body keypoints), resized to `size` (default: the
    image's own size). `detector` reuses a loaded one; otherwise `load` goes to load_openpose."""
    import numpy as np

    detector = detector or load_openpose(**load)
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    res = max(64, min(1024, min(image.size)))
    out = detector(rgb, detect_resolution=res, image_resolution=res, include_body=True, output_type="pil")
    return out.convert("RGB").resize(size or image.size, Image.BICUBIC)

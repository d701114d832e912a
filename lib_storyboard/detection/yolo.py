"""YOLO (ultralytics) detectors: `.pt` files the user placed in the given folders, plus the standard face/hand/person
models downloaded from the Hugging Face hub on first use.

A `.pt` is a pickle, and unpickling runs code: only files found in the caller's folders or written there by our own
download are ever loaded, and models are chosen by file name, never by a path from a request. A1111 replaces
`torch.load` with a safe unpickler that rejects ultralytics pickles; the host glue passes `unpickle_context`, a
context manager that lifts it for exactly these trusted loads.
"""
from __future__ import annotations

import contextlib
import os
from typing import ContextManager
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from .result import Detections, DetectorError, box_mask, clamp_box, draw_preview

HUB_REPO = "Bingsu/adetailer"
# The standard models of the adetailer hub repository: 2D/realistic faces and hands, and person segmentation.
STANDARD_MODELS: tuple[str, ...] = (
    "face_yolov8n.pt", "face_yolov8s.pt", "hand_yolov8n.pt", "person_yolov8n-seg.pt", "person_yolov8s-seg.pt")
EXTENSIONS = (".pt",)

UnpickleContext = Callable[[], ContextManager] | None


def prepare_ultralytics_env(offline: bool) -> None:
    """Call before the first `import ultralytics`.

    Ultralytics reads its environment at import: it writes settings under YOLO_CONFIG_DIR (falling back to /tmp with
    a warning when that folder does not exist yet) and probes DNS unless YOLO_OFFLINE is set. We fetch weights
    ourselves, so when downloads are off nothing of ultralytics' own networking is wanted either. `setdefault`
    leaves a value chosen by the user or the host untouched.
    """
    cfg = os.environ.get("YOLO_CONFIG_DIR")
    if cfg:
        os.makedirs(os.path.join(os.path.expanduser(cfg), "Ultralytics"), exist_ok=True)
    if offline:
        os.environ.setdefault("YOLO_OFFLINE", "1")


def list_model_files(folders: Sequence[str]) -> dict[str, str]:
    """File name → path of every YOLO model in `folders` (not recursive); the first folder wins on a name clash."""
    found: dict[str, str] = {}
    for folder in folders:
        if not folder or not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name.lower().endswith(EXTENSIONS) and os.path.isfile(path) and name not in found:
                found[name] = path
    return found


def download_model(name: str, download_dir: str | None, allow_download: bool,
                   endpoint: str | None = None) -> str:
    """Fetch a standard model from the hub (or a mirror `endpoint`) into `download_dir` (or the hub cache) and
    return its path."""
    if name not in STANDARD_MODELS:
        raise DetectorError(f"YOLO model {name!r} is not in any models folder and is not a standard downloadable "
                            f"model ({', '.join(STANDARD_MODELS)}).")
    if not allow_download:
        raise DetectorError(f"YOLO model {name!r} is not in any models folder and downloads are turned off; "
                            f"place the file in a models folder.")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as e:
        raise DetectorError(f"Cannot download {name}: huggingface_hub is not installed ({e}).") from e
    if not download_dir:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(HUB_REPO, name)
        if isinstance(cached, str):
            return cached  # fetched earlier into the hub cache: no network round trip
    try:
        # hf_hub_download writes to a temporary file and renames it, so a broken download leaves no partial .pt.
        if download_dir:
            return hf_hub_download(HUB_REPO, name, local_dir=download_dir, endpoint=endpoint)
        return hf_hub_download(HUB_REPO, name, endpoint=endpoint)
    except Exception as e:  # offline mode, DNS, HTTP and hub errors all mean "not available now"
        where = f"into {download_dir} " if download_dir else ""
        raise DetectorError(f"Could not download {name} {where}from the Hugging Face hub ({HUB_REPO}): the hub is "
                            f"unreachable or offline mode is on ({type(e).__name__}); place the file in a models "
                            f"folder instead.") from e


def load_model(path: str, unpickle_context: UnpickleContext = None):
    """Load a trusted `.pt` with ultralytics; `unpickle_context()` wraps the unpickling (host safe-unpickle bypass)."""
    from ultralytics import YOLO

    ctx = unpickle_context() if unpickle_context is not None else contextlib.nullcontext()
    with ctx:
        return YOLO(path)


def _segment_mask(polygon: np.ndarray, size: tuple[int, int]) -> Image.Image | None:
    import cv2

    if polygon is None or len(polygon) < 3:
        return None
    m = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(m, [np.round(polygon).astype(np.int32)], 255)
    return Image.fromarray(m, "L") if m.any() else None


def predict(model, image: Image.Image, confidence: float = 0.3, classes: Sequence[str] = (),
            device: str | None = None, imgsz: int = 640) -> Detections:
    """Run a loaded YOLO model. Segmentation models give polygon masks in image pixels; box models give box masks.

    `classes` keeps only detections whose label is in it (case-insensitive), for multi-class models.
    """
    rgb = image.convert("RGB")
    size = rgb.size
    # ultralytics treats numpy input as BGR (OpenCV order); a PIL image is taken as RGB.
    result = model.predict(rgb, conf=confidence, device=device, imgsz=imgsz, verbose=False)[0]
    names = result.names or {}
    wanted = {c.strip().lower() for c in classes if c.strip()}
    polygons = result.masks.xy if result.masks is not None else None
    boxes, masks, scores, labels = [], [], [], []
    xyxy = result.boxes.xyxy.cpu().numpy() if len(result.boxes) else np.zeros((0, 4))
    conf = result.boxes.conf.cpu().numpy() if len(result.boxes) else np.zeros(0)
    cls = result.boxes.cls.cpu().numpy().astype(int) if len(result.boxes) else np.zeros(0, int)
    for i in range(len(xyxy)):
        label = str(names.get(int(cls[i]), cls[i]))
        if wanted and label.lower() not in wanted:
            continue
        box = clamp_box(xyxy[i], size)
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            continue
        mask = _segment_mask(polygons[i], size) if polygons is not None else None
        boxes.append(box)
        masks.append(mask if mask is not None else box_mask(box, size))
        scores.append(float(conf[i]))
        labels.append(label)
    return Detections(size, boxes, masks, scores, labels, draw_preview(rgb, boxes, labels, scores, masks))


class YoloModels:
    """Finds, downloads and caches YOLO models by file name. One instance per host process (or per test)."""

    def __init__(self, folders: Sequence[str] = (), download_dir: str | None = None,
                 allow_download: bool = True, unpickle_context: UnpickleContext = None,
                 hub_endpoint: str | None = None) -> None:
        self.folders = [f for f in folders if f]
        self.hub_endpoint = hub_endpoint
        self.download_dir = download_dir
        self.allow_download = allow_download
        self.unpickle_context = unpickle_context
        self._cache: dict[tuple[str, float], object] = {}

    def local(self) -> dict[str, str]:
        folders = self.folders + ([self.download_dir] if self.download_dir else [])
        return list_model_files(folders)

    def names(self) -> list[str]:
        """Local models, then the standard ones still downloadable (only when downloads are on)."""
        local = self.local()
        extra = [n for n in STANDARD_MODELS if n not in local] if self.allow_download else []
        return sorted(local) + extra

    def path(self, name: str) -> str:
        if os.path.basename(name) != name or name in ("", ".", ".."):
            raise DetectorError(f"YOLO model {name!r} must be a bare file name from a models folder.")
        local = self.local()
        if name in local:
            return local[name]
        return download_model(name, self.download_dir, self.allow_download, self.hub_endpoint)

    def model(self, name: str):
        path = self.path(name)
        key = (os.path.abspath(path), os.path.getmtime(path))
        if key not in self._cache:
            self._cache.clear()  # keep one model in memory: passes usually reuse the same file
            prepare_ultralytics_env(offline=not self.allow_download)
            try:
                self._cache[key] = load_model(path, self.unpickle_context)
            except Exception as e:
                raise DetectorError(f"Could not load YOLO model {name}: {type(e).__name__}: {e}".rstrip(".")
                                    + ".") from e
        return self._cache[key]

    def detect(self, name: str, image: Image.Image, confidence: float = 0.3, classes: Sequence[str] = (),
               device: str | None = None, imgsz: int = 640) -> Detections:
        return predict(self.model(name), image, confidence, classes, device, imgsz)

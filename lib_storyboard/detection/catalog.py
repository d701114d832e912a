"""Which detectors can run here, and one `detect(name, image, ...)` for all of them.

Each detector family depends on an optional package. A package that fails to import (absent, or broken by a
protobuf/numpy mismatch) turns off that family with one sentence saying why; the other family keeps working.
"""
from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from collections.abc import Sequence

from PIL import Image

from . import mediapipe_face, yolo
from .result import Detections, DetectorError

FAMILIES = {"mediapipe": "mediapipe", "yolo": "ultralytics"}  # family → package it needs


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str                 # "mediapipe" | "yolo"
    source: str                 # "builtin" (ships in the package) | "folder" | "hub" (downloaded on first use)
    path: str | None = None
    description: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class DetectorCatalog:
    """Detectors available to one host process; `yolo_folders` are searched in order (host's first, then ours)."""

    def __init__(self, yolo_folders: Sequence[str] = (), download_dir: str | None = None,
                 allow_download: bool = True, unpickle_context: yolo.UnpickleContext = None,
                 device: str | None = None, hub_endpoint: str | None = None) -> None:
        self.yolo = yolo.YoloModels(yolo_folders, download_dir, allow_download, unpickle_context, hub_endpoint)
        self.device = device
        self._why_not: dict[str, str | None] = {}

    def _check(self, family: str) -> str | None:
        if family not in self._why_not:
            package = FAMILIES[family]
            if family == "yolo":
                yolo.prepare_ultralytics_env(offline=not self.yolo.allow_download)
            try:
                importlib.import_module(package)
                self._why_not[family] = None
            except Exception as e:  # ImportError, but also protobuf/numpy ABI errors raised while importing
                first = str(e).splitlines()[0] if str(e) else type(e).__name__
                self._why_not[family] = (f"{family} detectors are off because the {package} package cannot be "
                                         f"imported ({first}).")
        return self._why_not[family]

    def availability(self) -> dict[str, str | None]:
        """Family → None when it works, else the sentence that says why it is off."""
        return {family: self._check(family) for family in FAMILIES}

    def models(self) -> list[ModelInfo]:
        out: list[ModelInfo] = []
        if self._check("mediapipe") is None:
            out += [ModelInfo(n, "mediapipe", "builtin", None, d) for n, d in mediapipe_face.MODELS.items()]
        if self._check("yolo") is None:
            local = self.yolo.local()
            for name in self.yolo.names():
                if name in local:
                    out.append(ModelInfo(name, "yolo", "folder", local[name], "YOLO model file"))
                else:
                    out.append(ModelInfo(name, "yolo", "hub", None, f"downloaded from {yolo.HUB_REPO} on first use"))
        return out

    def names(self) -> list[str]:
        return [m.name for m in self.models()]

    def family_of(self, name: str) -> str:
        if name in mediapipe_face.MODELS:
            return "mediapipe"
        if name.lower().endswith(yolo.EXTENSIONS):
            return "yolo"
        raise DetectorError(f"Unknown detector {name!r}: use a mediapipe model "
                            f"({', '.join(mediapipe_face.MODELS)}) or a YOLO .pt file name.")

    def detect(self, name: str, image: Image.Image, confidence: float = 0.3, classes: Sequence[str] = (),
               imgsz: int = 640) -> Detections:
        family = self.family_of(name)
        why_not = self._check(family)
        if why_not:
            raise DetectorError(why_not)
        if family == "mediapipe":
            return mediapipe_face.detect_mediapipe(name, image, confidence)
        return self.yolo.detect(name, image, confidence, classes, self.device, imgsz)

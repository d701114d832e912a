"""Detectors (mediapipe faces, YOLO files) behind one result type; see `catalog.DetectorCatalog`."""
from .catalog import DetectorCatalog, ModelInfo
from .result import Detections, DetectorError

__all__ = ["DetectorCatalog", "ModelInfo", "Detections", "DetectorError"]

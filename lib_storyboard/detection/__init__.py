"""Detectors (mediapipe faces, YOLO files) behind one result type; see `registry.DetectorRegistry`."""
from .registry import DetectorRegistry, ModelInfo
from .result import Detections, DetectorError

__all__ = ["DetectorRegistry", "ModelInfo", "Detections", "DetectorError"]

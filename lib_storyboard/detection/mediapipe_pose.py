"""Body landmarks with the pose model that ships inside the mediapipe 0.10.x wheel, offline.

The 0.10.9 wheel bundles only `pose_landmark_full.tflite`, which is `model_complexity=1`; complexity 0 and 2 would
download their models on first use, so they are never asked for. One person per image (mediapipe's own choice).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

COMPLEXITY = 1  # the only pose model inside the wheel
# Landmark indices of mediapipe's 33-point body model, the ones that tell how much of a body is in frame.
PARTS: dict[str, tuple[int, ...]] = {
    "nose": (0,), "shoulders": (11, 12), "hips": (23, 24), "knees": (25, 26),
    "ankles": (27, 28), "heels": (29, 30), "feet": (31, 32),
}


@dataclass(frozen=True)
class Landmark:
    x: float            # relative to the image width: 0..1 inside the frame, outside it when mediapipe extrapolates
    y: float
    visibility: float   # mediapipe's estimate that the point is visible (not occluded, not outside the frame)


def _inside(p: Landmark) -> bool:
    return -0.02 <= p.x <= 1.02 and -0.02 <= p.y <= 1.02


@dataclass(frozen=True)
class Pose:
    landmarks: tuple[Landmark, ...]  # 33 points

    def visibility(self, name: str) -> float:
        """Mean visibility of a part's points (e.g. both ankles), a point outside the frame counting as 0."""
        pts = [self.landmarks[i] for i in PARTS[name]]
        return sum(p.visibility if _inside(p) else 0.0 for p in pts) / len(pts)

    def extent(self, min_visibility: float = 0.5) -> float:
        """Height of the visible body as a share of the frame (top visible point to bottom visible point)."""
        ys = [p.y for p in self.landmarks if p.visibility >= min_visibility and _inside(p)]
        return max(ys) - min(ys) if ys else 0.0

    def part(self, name: str, min_visibility: float = 0.5) -> Landmark | None:
        """The most visible in-frame landmark of a part (e.g. "ankles": left or right), or None when neither is
        visible inside the frame."""
        best = None
        for i in PARTS[name]:
            p = self.landmarks[i]
            if _inside(p) and p.visibility >= min_visibility and (best is None or p.visibility > best.visibility):
                best = p
        return best


def detect_pose(image: Image.Image, confidence: float = 0.5) -> Pose | None:
    """The body landmarks of the most prominent person in `image`, or None when no body is found."""
    import mediapipe as mp

    arr = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=COMPLEXITY,
                                min_detection_confidence=confidence) as pose:
        result = pose.process(arr)
    if not result.pose_landmarks:
        return None
    return Pose(tuple(Landmark(float(p.x), float(p.y), float(p.visibility))
                      for p in result.pose_landmarks.landmark))

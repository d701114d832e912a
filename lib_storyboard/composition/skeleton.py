"""The OpenPose body format: 18 COCO keypoints, 17 limbs, one colour per limb and per joint, on black.

ControlNet's openpose models were trained on images drawn this way: each limb a filled ellipse in its colour at 60 %
strength, each joint a small disc in its own colour at full strength. A missing keypoint (None) and every limb that
touches it are left out, as the detector leaves out what it cannot see.
"""
from __future__ import annotations

import math
from typing import Sequence

from PIL import Image, ImageDraw

# The 18 keypoints, in the format's order (a person's "right" is on the image's left when they face the camera).
KEYPOINTS = ("nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist", "r_hip",
             "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear")
INDEX = {name: i for i, name in enumerate(KEYPOINTS)}

# The 17 limbs, by keypoint name; limb k is drawn in COLOURS[k], joint k in COLOURS[k].
LIMBS = (("neck", "r_shoulder"), ("neck", "l_shoulder"), ("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist"),
         ("l_shoulder", "l_elbow"), ("l_elbow", "l_wrist"), ("neck", "r_hip"), ("r_hip", "r_knee"),
         ("r_knee", "r_ankle"), ("neck", "l_hip"), ("l_hip", "l_knee"), ("l_knee", "l_ankle"), ("neck", "nose"),
         ("nose", "r_eye"), ("r_eye", "r_ear"), ("nose", "l_eye"), ("l_eye", "l_ear"))

# A hue wheel in 18 steps of 85/255: red → yellow → green → cyan → blue → magenta → back towards red.
COLOURS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
           (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
           (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))
LIMB_STRENGTH = 0.6

Point = tuple[float, float] | None


def line_width(width: int, height: int) -> int:
    """About 4 px at 512 px, as the detector draws; never under 1."""
    return max(1, round(min(width, height) / 128))


def _limb_polygon(a: tuple[float, float], b: tuple[float, float], half_width: float, steps: int = 24):
    """An ellipse whose long axis runs from a to b."""
    cx, cy = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    half_len = math.hypot(b[0] - a[0], b[1] - a[1]) / 2
    ang = math.atan2(b[1] - a[1], b[0] - a[0])
    ca, sa = math.cos(ang), math.sin(ang)
    pts = []
    for i in range(steps):
        t = 2 * math.pi * i / steps
        u, v = half_len * math.cos(t), half_width * math.sin(t)
        pts.append((cx + u * ca - v * sa, cy + u * sa + v * ca))
    return pts


def draw_skeleton(figures: Sequence[Sequence[Point]], width: int, height: int) -> Image.Image:
    """One RGB image, black background, every figure's limbs then joints (pixel coordinates; None = not seen)."""
    image = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    w = line_width(width, height)
    for points in figures:
        for k, (na, nb) in enumerate(LIMBS):
            a, b = points[INDEX[na]], points[INDEX[nb]]
            if a is None or b is None:
                continue
            colour = tuple(round(c * LIMB_STRENGTH) for c in COLOURS[k])
            draw.polygon(_limb_polygon(a, b, w), fill=colour)
    for points in figures:
        for k, p in enumerate(points):
            if p is not None:
                draw.ellipse((p[0] - w, p[1] - w, p[0] + w, p[1] + w), fill=COLOURS[k])
    return image

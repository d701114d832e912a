"""Placing a pose in the frame the way each shot frames a person.

cu: the top of the head just under the frame top, the shoulders near the bottom (head and shoulders fill it);
ms: head to waist, the hips just inside the bottom edge; fs: the whole body with a margin above and below. Two
people in a close-up or medium shot: as tight as both heads allow (a two-shot), so more of the bodies shows.
Keypoints the frame cuts off are left out of the picture, as a detector would not see them.
"""
from __future__ import annotations

from PIL import Image

from .poses import HEAD_ABOVE_NOSE, POSES, pose_figures
from .skeleton import INDEX, draw_skeleton

# shot → (body landmark that sets the bottom, where the head top sits, where that landmark sits): frame-height shares
FRAMING = {"cu": ("shoulders", 0.06, 0.80), "ms": ("hips", 0.06, 0.93), "fs": ("ankles", 0.08, 0.90)}
FS_SIDE_MARGIN = 0.06      # a full shot keeps every keypoint this far from the left and right edges too
HEAD_SIDE_MARGIN = 0.12    # cu / ms: every head (its ears) at least this far from the side edges
COMPOSITIONS = ("none",) + tuple(POSES)

_LANDMARKS = {"shoulders": ("r_shoulder", "l_shoulder"), "hips": ("r_hip", "l_hip"), "ankles": ("r_ankle", "l_ankle")}


def _head_top(fig) -> float:
    return fig[INDEX["nose"]][1] - HEAD_ABOVE_NOSE


def frame_figures(pose: str, shot: str, width: int, height: int) -> list[list[tuple[float, float] | None]]:
    """The pose's keypoints in pixels at the shot's framing; None where the frame cuts a keypoint off."""
    if shot not in FRAMING:
        raise ValueError(f"Unknown shot {shot!r}; choose one of {', '.join(FRAMING)}.")
    if width < 8 or height < 8:
        raise ValueError(f"A pose image must be at least 8 x 8 pixels, not {width} x {height}.")
    figures = pose_figures(pose)
    landmark, top_at, bottom_at = FRAMING[shot]
    top = min(_head_top(f) for f in figures)
    bottom = max(f[INDEX[k]][1] for f in figures for k in _LANDMARKS[landmark])
    scale = (bottom_at - top_at) * height / (bottom - top)          # pixels per body unit
    y0 = top_at * height
    if shot == "fs":   # the whole body side to side too; a wide group in a narrow frame: smaller, centred
        xs = [p[0] for f in figures for p in f]
        fit = (1 - 2 * FS_SIDE_MARGIN) * width / max(1e-6, max(xs) - min(xs))
        if fit < scale:
            scale, y0 = fit, (height - fit * (bottom - top)) / 2
    else:              # centred on the heads; two people in a close-up: wide enough for both heads
        xs = [f[INDEX[k]][0] for f in figures for k in ("r_ear", "l_ear")]
        scale = min(scale, (1 - 2 * HEAD_SIDE_MARGIN) * width / max(1e-6, max(xs) - min(xs)))
    x_mid = (max(xs) + min(xs)) / 2

    def place(p):
        x, y = width / 2 + scale * (p[0] - x_mid), y0 + scale * (p[1] - top)
        return (x, y) if 0 <= x < width and 0 <= y < height else None

    return [[place(p) for p in f] for f in figures]


def pose_image(pose: str, shot: str, width: int, height: int) -> Image.Image:
    """The OpenPose-format image of `pose` framed as `shot` (cu / ms / fs), width × height, RGB on black."""
    return draw_skeleton(frame_figures(pose, shot, width, height), width, height)

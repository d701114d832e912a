"""The procedural poses, in body units: a standing figure is 1 tall, from the top of the head (y = 0) to the soles
(y = 1), centred on x = 0, facing the camera (so its right side is on the image's left)."""
from __future__ import annotations

from .skeleton import KEYPOINTS

HEAD_ABOVE_NOSE = 0.068   # the top of the head, above the nose (not an OpenPose keypoint, but framing needs it)

# OpenPose's "neck" is the point between the shoulders, not the throat.
_HEAD = {"nose": (0.0, 0.068), "r_eye": (-0.022, 0.052), "l_eye": (0.022, 0.052), "r_ear": (-0.05, 0.06),
         "l_ear": (0.05, 0.06), "neck": (0.0, 0.175)}
_SHOULDERS = {"r_shoulder": (-0.11, 0.18), "l_shoulder": (0.11, 0.18)}
_HIPS = {"r_hip": (-0.06, 0.5), "l_hip": (0.06, 0.5)}

_STANDING = {**_HEAD, **_SHOULDERS, **_HIPS,
             "r_elbow": (-0.135, 0.31), "r_wrist": (-0.145, 0.45), "l_elbow": (0.135, 0.31), "l_wrist": (0.145, 0.45),
             "r_knee": (-0.065, 0.72), "r_ankle": (-0.07, 0.945), "l_knee": (0.065, 0.72), "l_ankle": (0.07, 0.945)}

# Mid-stride: the right leg forward and out, the left back; arms swing against the legs.
_WALKING = {**_HEAD, **_SHOULDERS, **_HIPS,
            "r_elbow": (-0.12, 0.31), "r_wrist": (-0.07, 0.43), "l_elbow": (0.16, 0.30), "l_wrist": (0.21, 0.42),
            "r_knee": (-0.11, 0.71), "r_ankle": (-0.17, 0.93), "l_knee": (0.08, 0.72), "l_ankle": (0.13, 0.945)}

# On a chair, facing the camera: thighs come towards the viewer (short on screen), shins hang down, hands on knees.
_SITTING = {**_HEAD, **_SHOULDERS, **_HIPS,
            "r_elbow": (-0.14, 0.33), "r_wrist": (-0.10, 0.50), "l_elbow": (0.14, 0.33), "l_wrist": (0.10, 0.50),
            "r_knee": (-0.09, 0.58), "r_ankle": (-0.09, 0.82), "l_knee": (0.09, 0.58), "l_ankle": (0.09, 0.82)}


def _figure(parts: dict, dx: float = 0.0, scale: float = 1.0, dy: float = 0.0) -> list[tuple[float, float]]:
    return [(dx + scale * parts[k][0], dy + scale * parts[k][1]) for k in KEYPOINTS]


POSES = {
    "standing": lambda: [_figure(_STANDING)],
    "sitting": lambda: [_figure(_SITTING)],
    "walking": lambda: [_figure(_WALKING)],
    # two people side by side, the second a little shorter, both feet on the same floor line
    "two": lambda: [_figure(_STANDING, dx=-0.17), _figure(_WALKING, dx=0.17, scale=0.94, dy=0.06)],
}


def pose_figures(pose: str) -> list[list[tuple[float, float]]]:
    """Each figure's 18 keypoints in body units."""
    if pose not in POSES:
        raise ValueError(f"Unknown pose {pose!r}; choose one of {', '.join(POSES)}.")
    return POSES[pose]()

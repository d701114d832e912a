"""Composition per shot: OpenPose-format pose images (drawn procedurally at each shot's framing, or extracted from a
user's reference photo) that a ControlNet turns into the panel's composition. Host-independent."""
from .framing import COMPOSITIONS, FRAMING, frame_figures, pose_image
from .poses import POSES, pose_figures
from .skeleton import draw_skeleton

__all__ = ["COMPOSITIONS", "FRAMING", "POSES", "draw_skeleton", "frame_figures", "pose_figures", "pose_image"]

"""Which pose image a board panel gets: its pose (the scene's own, else the board's composition), framed as the
panel's shot (read off its trigger, as the host drawer reads it for the style LoRA). A panel without a shot, or with
the pose "none", gets none."""
from __future__ import annotations

from PIL import Image

from .. import shots
from .framing import pose_image


def panel_pose(pose: str, prompt: str, width: int, height: int) -> Image.Image | None:
    found = shots.find_triggers(prompt)
    if pose in ("", "none") or not found:
        return None
    return pose_image(pose, found[0].key, width, height)

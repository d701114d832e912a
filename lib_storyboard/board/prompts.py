"""Each panel's prompt, negative, seed, pose and file name, from its scene and the board's options."""
from __future__ import annotations

from dataclasses import dataclass

from .. import shots
from .options import BoardOptions
from .scenes import NO_POSE, SEED_MAX, Scene, SceneList


@dataclass(frozen=True)
class PanelPlan:
    number: int
    shot: str | None
    prompt: str
    negative: str
    seed: int
    file_name: str
    label: str                 # above the panel: "3 · CU"
    dialogue: str              # under the panel
    pose: str = NO_POSE        # the pose the panel is drawn in: the scene's own, else the board's composition

    def as_dict(self) -> dict:
        d = {"number": self.number, "shot": self.shot, "prompt": self.prompt, "negative": self.negative,
             "seed": self.seed, "file": self.file_name}
        if self.pose != NO_POSE:   # boards without poses keep the board.json they always had
            d["pose"] = self.pose
        return d


def _join(*parts: str) -> str:
    return ", ".join(p.strip().strip(",").strip() for p in parts if p and p.strip().strip(","))


def panel_seed(scene: Scene, index: int, options: BoardOptions) -> int:
    """The scene's own seed; else the base seed (fixed: the same character in every panel) or base + index."""
    if scene.seed is not None:
        return scene.seed
    return options.seed if options.seed_policy == "fixed" else (options.seed + index) % (SEED_MAX + 1)


def panel_pose_name(scene: Scene, options: BoardOptions) -> str:
    """The scene's own pose, else the board's composition; none for a panel without a shot (nothing frames it)."""
    if not scene.shot:
        return NO_POSE
    return scene.pose or options.composition


def controlnet_need(options: BoardOptions, scene_list: SceneList | None = None) -> str | None:
    """What on this board needs an openpose ControlNet, as a sentence's subject ("The composition 'walking'",
    "Scene 2's pose 'sitting'"), or None when no panel gets a pose."""
    if options.composition != NO_POSE:
        return f"The composition {options.composition!r}"
    for s in scene_list.scenes if scene_list else ():
        if s.pose not in ("", NO_POSE):
            return f"Scene {s.number}'s pose {s.pose!r}"
    return None


def plan_panel(scene: Scene, index: int, options: BoardOptions, seed: int | None = None) -> PanelPlan:
    # The trigger goes first: that is where training put it, and A1111's prompt weighting favours early tokens.
    trigger = shots.BY_KEY[scene.shot].trigger if scene.shot else ""
    label = f"{scene.number} · {scene.shot.upper()}" if scene.shot else f"{scene.number}"
    return PanelPlan(scene.number, scene.shot, _join(trigger, options.prefix, scene.description),
                     _join(options.negative, scene.negative),
                     panel_seed(scene, index, options) if seed is None else seed,
                     f"panel-{scene.number:03d}.png", label, scene.dialogue, panel_pose_name(scene, options))


def plan_board(scene_list: SceneList, options: BoardOptions, seeds: dict[int, int] | None = None) -> list[PanelPlan]:
    """One plan per scene; `seeds` (scene number → seed) holds panels redrawn with a seed of their own."""
    seeds = seeds or {}
    return [plan_panel(s, i, options, seeds.get(s.number)) for i, s in enumerate(scene_list.scenes)]

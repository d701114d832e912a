"""Procedural storyboard panels: black-on-white sketches of one simple figure at a chosen framing.

A panel's *scene* (pose, hair, props, setting, stray strokes) comes from its seed alone, and the *camera* from the
seed and the shot, so the same seed drawn at the three framings shows the same scene and has the same tags and
caption. Tags and captions therefore carry no information about the shot, which is what lets a base model trained
on them know nothing about framing while our trainer teaches it the three shot tokens.

The figure lives in "head units" (head radius 1, head centre at the origin, y pointing down, feet near y=11.7);
the camera maps units to frame fractions. Framings, by head radius R as a fraction of the frame height:
close-up R 0.22-0.30 (head and shoulders fill the frame), medium R 0.125-0.185 (cut between waist and hips),
full R 0.040-0.064 (the whole figure and its feet inside the frame). Lines are drawn at 4x with PIL and reduced.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from ..formats.atomic import atomic_path, atomic_write_text
from ..shots import BY_KEY

SHOT_KEYS = ("cu", "ms", "fs")
LAYOUTS = ("tags", "folders", "none")
SUPERSAMPLE = 4

# Head radius ranges (fraction of frame height) per framing; the judge's thresholds sit between them.
R_RANGE = {"cu": (0.22, 0.30), "ms": (0.125, 0.185), "fs": (0.040, 0.064)}
MS_CUT = (4.2, 5.8)          # medium shot: the frame bottom falls between the waist (4.6) and the hips (6.0)

# Body landmarks in head units.
NECK_Y, SHOULDER_Y, WAIST_Y, HIP_Y = 1.45, 1.9, 4.6, 6.0
UPPER_ARM, FOREARM, THIGH, SHIN = 2.3, 2.1, 2.9, 2.7

POSES = ("standing", "waving", "walking", "sitting", "pointing", "arms crossed", "hands on hips", "arms raised")
POSE_PHRASE = {"standing": "standing", "waving": "waving", "walking": "walking", "sitting": "sitting on a chair",
               "pointing": "pointing", "arms crossed": "with arms crossed", "hands on hips": "with hands on hips",
               "arms raised": "with arms raised"}
PROFILE_POSES = {"walking", "sitting"}   # drawn side-on; the others face the viewer
# (upper, lower) limb angles in radians from straight down; positive = outward (front view) or forward (profile).
_POSE_LIMBS = {
    "standing": dict(arm_l=(0.12, 0.05), arm_r=(0.12, 0.05), leg_l=(0.07, 0.03), leg_r=(0.07, 0.03)),
    "waving": dict(arm_l=(0.12, 0.05), arm_r=(2.0, 2.9), leg_l=(0.07, 0.03), leg_r=(0.07, 0.03)),
    "walking": dict(arm_l=(0.5, 0.9), arm_r=(-0.45, -0.25), leg_l=(0.45, 0.1), leg_r=(-0.35, -0.6)),
    "sitting": dict(arm_l=(0.4, 1.2), arm_r=(0.25, 1.1), leg_l=(1.57, 0.0), leg_r=(1.45, -0.05)),
    "pointing": dict(arm_l=(0.12, 0.05), arm_r=(1.5, 1.55), leg_l=(0.07, 0.03), leg_r=(0.07, 0.03)),
    "arms crossed": dict(arm_l=(0.2, -1.85), arm_r=(0.2, -2.0), leg_l=(0.07, 0.03), leg_r=(0.07, 0.03)),
    "hands on hips": dict(arm_l=(0.75, -0.65), arm_r=(0.75, -0.65), leg_l=(0.1, 0.05), leg_r=(0.1, 0.05)),
    "arms raised": dict(arm_l=(2.7, 2.95), arm_r=(2.7, 2.95), leg_l=(0.07, 0.03), leg_r=(0.07, 0.03)),
}
PROPS = ("hat", "glasses", "cup", "sword", "bag")
HAIRS = ("short hair", "flowing hair", None)
SETTINGS = ("outdoors", "indoors", None)


class ToyworldError(ValueError):
    """Bad arguments to the panel generator."""


@dataclass
class Panel:
    image: Image.Image          # RGB, size x size
    shot: str                   # "cu" | "ms" | "fs"
    tags: list[str]             # pose, hair, props, setting: never the shot
    caption: str                # e.g. "a sketch of a person waving, by a window"
    geometry: dict = field(default_factory=dict)   # ground truth in frame fractions (head, figure box, feet)


@dataclass
class _Scene:
    pose: str
    facing: int                 # +1 right, -1 left (profile poses and gaze)
    hair: str | None
    props: list[str]
    setting: str | None
    tree: bool
    window: bool
    door: bool
    horizon_y: float            # background units
    tree_x: float
    corner_x: float
    floor_y: float              # background units: where the back wall meets the floor
    window_x: float
    door_x: float
    ink: int                    # 0..60: the pen's grey
    width: float                # line width, fraction of the frame
    n_strays: int


def _sample_scene(seed: int) -> _Scene:
    rng = np.random.default_rng([seed, 0])
    pose = POSES[rng.integers(len(POSES))]
    props = [p for p in PROPS if rng.random() < 0.2][:2]
    setting = SETTINGS[rng.choice(3, p=[0.4, 0.4, 0.2])]
    side = 1.0 if rng.random() < 0.5 else -1.0
    window = setting == "indoors" and rng.random() < 0.55
    door = setting == "indoors" and rng.random() < 0.45
    return _Scene(
        pose=pose, facing=1 if rng.random() < 0.5 else -1, hair=HAIRS[rng.integers(3)], props=props,
        setting=setting, tree=setting == "outdoors" and rng.random() < 0.5, window=window, door=door,
        horizon_y=float(rng.uniform(-1.5, 4.0)), tree_x=side * float(rng.uniform(4.5, 9.0)),
        corner_x=-side * float(rng.uniform(4.0, 11.0)), floor_y=float(rng.uniform(8.0, 10.0)),
        window_x=side * float(rng.uniform(3.5, 8.0)),
        door_x=-side * float(rng.uniform(4.0, 9.0)) if not window else side * float(rng.uniform(9.5, 13.0)),
        ink=int(rng.integers(0, 60)), width=float(rng.uniform(0.011, 0.02)), n_strays=int(rng.integers(0, 4)))


def tags_and_caption(seed: int) -> tuple[list[str], str]:
    """The tags and caption of every panel drawn from `seed`, whatever its shot."""
    s = _sample_scene(seed)
    tags = ["person", s.pose] + (["chair"] if s.pose == "sitting" else [])
    tags += [s.hair] if s.hair else []
    tags += s.props
    phrase = ["a sketch of a person " + POSE_PHRASE[s.pose]]
    if s.hair:
        phrase.append("with " + s.hair)
    if "hat" in s.props:
        phrase.append("wearing a hat")
    if "glasses" in s.props:
        phrase.append("wearing glasses")
    held = [p for p in ("cup", "sword") if p in s.props]
    if held:
        phrase.append("holding a " + " and a ".join(held))
    if "bag" in s.props:
        phrase.append("carrying a bag")
    if s.setting == "outdoors":
        tags += ["outdoors", "horizon"] + (["tree"] if s.tree else [])
        phrase.append("by a tree" if s.tree else "outdoors")
    elif s.setting == "indoors":
        tags += ["indoors", "room"] + (["window"] if s.window else []) + (["door"] if s.door else [])
        things = [w for w, on in (("a window", s.window), ("a door", s.door)) if on]
        phrase.append(("by " + " and ".join(things)) if things else "in a room")
    return tags, ", ".join(phrase)


# ----------------------------------------------------------------------------------------------- figure geometry

def _limb(root, angles, lengths, side: float, profile: bool, facing: int) -> list[np.ndarray]:
    """Joint positions of a two-segment limb; `side` is -1/+1 for screen left/right in the front view."""
    sign = facing if profile else side
    pts = [np.asarray(root, float)]
    for a, length in zip(angles, lengths):
        pts.append(pts[-1] + length * np.array([sign * math.sin(a), math.cos(a)]))
    return pts


def _skeleton(scene: _Scene, rng: np.random.Generator) -> dict:
    """Joints of the posed figure in head units, with a little per-panel variation of the angles."""
    profile = scene.pose in PROFILE_POSES
    limbs = {k: tuple(a + rng.normal(0, 0.07) for a in v) for k, v in _POSE_LIMBS[scene.pose].items()}
    sh_w, hip_w = (0.135, 0.105) if profile else (1.7, 0.8)     # side-on, the shoulders and hips overlap
    j = {"shoulder_l": (-sh_w, SHOULDER_Y), "shoulder_r": (sh_w, SHOULDER_Y), "hip_l": (-hip_w, HIP_Y),
         "hip_r": (hip_w, HIP_Y)}
    for name, side in (("arm_l", -1.0), ("arm_r", 1.0)):
        j[name] = _limb(j["shoulder_" + name[-1]], limbs[name], (UPPER_ARM, FOREARM), side, profile, scene.facing)
    for name, side in (("leg_l", -1.0), ("leg_r", 1.0)):
        j[name] = _limb(j["hip_" + name[-1]], limbs[name], (THIGH, SHIN), side, profile, scene.facing)
    return j


def _feet_y(j: dict) -> float:
    return max(j["leg_l"][-1][1], j["leg_r"][-1][1]) + 0.25


def _figure_box(scene: _Scene, j: dict) -> tuple[float, float, float, float]:
    """Bounding box (x0, y0, x1, y1) in head units of everything drawn with the figure, props included."""
    pts = [(-1.0, -1.0), (1.0, 1.0), j["shoulder_l"], j["shoulder_r"], (0.0, _feet_y(j))]
    for k in ("arm_l", "arm_r", "leg_l", "leg_r"):
        pts += [tuple(p) for p in j[k]]
    if "hat" in scene.props:
        pts += [(-1.6, -2.1), (1.6, -2.1)]
    if "sword" in scene.props:
        pts.append(tuple(_sword_tip(j)))
    if scene.pose == "sitting":
        pts += [(-2.0 * scene.facing, 2.2), (2.6 * scene.facing, _feet_y(j))]
    a = np.array(pts, float)
    return float(a[:, 0].min() - 0.3), float(a[:, 1].min() - 0.3), float(a[:, 0].max() + 0.3), float(a[:, 1].max())


def _sword_tip(j: dict) -> np.ndarray:
    elbow, wrist = np.array(j["arm_r"][1]), np.array(j["arm_r"][2])
    d = (wrist - elbow) / (np.linalg.norm(wrist - elbow) + 1e-9)
    return wrist + 4.2 * d


# ----------------------------------------------------------------------------------------------- camera

def _camera(scene: _Scene, j: dict, shot: str, rng: np.random.Generator) -> tuple[float, float, float]:
    """(R, cx, cy): head radius and head centre in frame fractions for this framing."""
    lo, hi = R_RANGE[shot]
    if shot == "cu":
        r = rng.uniform(lo, hi)
        return r, rng.uniform(0.4, 0.6), rng.uniform(0.03, 0.12) + r
    if shot == "ms":
        top, cut = rng.uniform(0.04, 0.14), rng.uniform(*MS_CUT)
        r = (1.0 - top) / (cut + 1.0)
        return r, rng.uniform(0.36, 0.64), top + r
    x0, y0, x1, y1 = _figure_box(scene, j)
    r = rng.uniform(lo, hi)
    r = min(r, 0.9 / (y1 - y0), 0.9 / (x1 - x0))          # a tall pose (arms raised, sword) is drawn smaller
    bottom = rng.uniform(0.04, 0.2)
    cy = min(1.0 - bottom - r * y1, 1.0 - 0.04 - r * y1)
    cy = max(cy, 0.04 - r * y0)
    cx_lo, cx_hi = 0.04 - r * x0, 0.96 - r * x1
    cx = rng.uniform(min(cx_lo, cx_hi), max(cx_lo, cx_hi)) if cx_hi > cx_lo else 0.5 - r * (x0 + x1) / 2
    return r, cx, cy


# ----------------------------------------------------------------------------------------------- drawing

class _Pen:
    """Sketchy strokes on a supersampled canvas; coordinates are frame fractions."""

    def __init__(self, size: int, rng: np.random.Generator, width: float, ink: int, jitter: float):
        self.s = size * SUPERSAMPLE
        self.img = Image.new("L", (self.s, self.s), 255)
        self.draw = ImageDraw.Draw(self.img)
        self.rng, self.width, self.ink, self.jitter = rng, width, ink, jitter

    def _px(self, pts) -> list[tuple[float, float]]:
        return [(float(x) * self.s, float(y) * self.s) for x, y in pts]

    def _wobble(self, pts, jitter: float) -> np.ndarray:
        """Densify the polyline and add smooth hand tremor, so no two strokes are alike."""
        p = np.asarray(pts, float)
        out = [p[0]]
        for a, b in zip(p[:-1], p[1:]):
            n = max(1, int(np.linalg.norm(b - a) / 0.02))
            out += [a + (b - a) * t for t in np.linspace(0, 1, n + 1)[1:]]
        q = np.array(out)
        if jitter > 0 and len(q) > 1:
            noise = self.rng.normal(0, jitter, q.shape)
            k = min(len(q), 5)
            noise = np.apply_along_axis(lambda v: np.convolve(v, np.ones(k) / k, mode="same"), 0, noise)
            q = q + noise + self.rng.normal(0, jitter * 0.5, 2)
        return q

    def line(self, pts, width: float = 1.0, ink: int | None = None, jitter: float | None = None) -> None:
        q = self._wobble(pts, self.jitter if jitter is None else jitter)
        w = max(1, int(round(self.width * width * self.s * self.rng.uniform(0.85, 1.15))))
        self.draw.line(self._px(q), fill=self.ink if ink is None else ink, width=w, joint="curve")
        r = w / 2.0
        for x, y in self._px(q[[0, -1]]):   # round caps
            self.draw.ellipse((x - r, y - r, x + r, y + r), fill=self.ink if ink is None else ink)

    def ellipse(self, c, rx: float, ry: float, width: float = 1.0, a0: float = 0.0, a1: float = 2 * math.pi,
                tilt: float = 0.0) -> None:
        n = max(12, int(48 * (a1 - a0) / (2 * math.pi)))
        t = np.linspace(a0, a1, n)
        x, y = rx * np.cos(t), ry * np.sin(t)
        ct, st = math.cos(tilt), math.sin(tilt)
        self.line(np.stack([c[0] + ct * x - st * y, c[1] + st * x + ct * y], 1), width=width)

    def dot(self, c, r: float) -> None:
        (x, y), rp = self._px([c])[0], max(1.0, r * self.s)
        self.draw.ellipse((x - rp, y - rp, x + rp, y + rp), fill=self.ink)

    def fill(self, pts) -> None:
        """Paper-coloured area: the figure hides the background lines behind it."""
        self.draw.polygon(self._px(pts), fill=255)

    def fill_ellipse(self, c, rx: float, ry: float) -> None:
        (x, y) = self._px([c])[0]
        self.draw.ellipse((x - rx * self.s, y - ry * self.s, x + rx * self.s, y + ry * self.s), fill=255)

    def result(self, size: int) -> Image.Image:
        return self.img.resize((size, size), Image.BOX).convert("RGB")


def _draw_background(pen: _Pen, scene: _Scene, rb: float, cx: float, cy: float) -> None:
    def bg(x, y):
        return (cx + rb * x, cy + rb * y)

    ground = 10.5             # further back than the figure, so its foot is higher in the frame
    if scene.setting == "outdoors":
        hy = cy + rb * scene.horizon_y
        bump = pen.rng.uniform(-0.04, 0.04)
        pen.line([(-0.05, hy), (0.3, hy + bump), (0.7, hy - bump * 0.5), (1.05, hy)], width=0.8)
        if scene.tree:
            tx = scene.tree_x
            pen.line([bg(tx - 0.5, ground), bg(tx - 0.4, -0.5)])
            pen.line([bg(tx + 0.5, ground), bg(tx + 0.4, -0.5)])
            # a wide scalloped crown: it never reads as one clean circle (a head)
            n = 8
            for i in range(n):
                a = 2 * math.pi * i / n
                c = (tx + 3.4 * math.cos(a), -2.6 + 1.6 * math.sin(a))
                pen.ellipse(bg(*c), rb * 1.2, rb * 0.9, a0=a - 1.3, a1=a + 1.3)
    elif scene.setting == "indoors":
        # the back wall meets the floor above the feet (eye-level camera); the corner's side wall runs off
        # away from the figure, so nothing is drawn under the feet
        x, fy = scene.corner_x, scene.floor_y
        pen.line([(-0.05, cy + rb * fy), (1.05, cy + rb * fy)], width=0.9)
        pen.line([bg(x, -40), bg(x, fy)], width=0.9)
        out = 1.0 if x > 0 else -1.0
        pen.line([bg(x, fy), bg(x + out * 30, fy + 8)], width=0.9)
        if scene.window:
            wx = scene.window_x
            x0, x1, y0, y1 = wx - 2.2, wx + 2.2, -4.0, 2.0
            pen.line([bg(x0, y0), bg(x1, y0), bg(x1, y1), bg(x0, y1), bg(x0, y0)])
            pen.line([bg(wx, y0), bg(wx, y1)], width=0.7)
            pen.line([bg(x0, (y0 + y1) / 2), bg(x1, (y0 + y1) / 2)], width=0.7)
        if scene.door:
            dx = scene.door_x
            pen.line([bg(dx - 2.0, fy), bg(dx - 2.0, -5.0), bg(dx + 2.0, -5.0), bg(dx + 2.0, fy)])
            pen.dot(bg(dx + 1.4, 3.0), rb * 0.25)


def _draw_figure(pen: _Pen, scene: _Scene, j: dict, r: float, cx: float, cy: float) -> None:
    def f(x, y):
        return (cx + r * x, cy + r * y)

    def fl(pts):
        return [f(*p) for p in pts]

    profile = scene.pose in PROFILE_POSES
    face = scene.facing
    details = r >= 0.1          # an artist leaves out the face in a long shot
    # chair first, so the figure is drawn over it
    if scene.pose == "sitting":
        back, front, seat, fy = -1.6 * face, 2.4 * face, HIP_Y + 0.3, _feet_y(j)
        pen.line(fl([(back, 2.4), (back, seat), (front, seat)]))
        pen.line(fl([(back, seat), (back, fy)]))
        pen.line(fl([(front, seat), (front, fy)]))
    # the body hides what is behind it
    sl, sr = j["shoulder_l"], j["shoulder_r"]
    waist_w = 0.55 if profile else 1.15
    torso = [sl, (-waist_w, WAIST_Y), j["hip_l"], j["hip_r"], (waist_w, WAIST_Y), sr]
    pen.fill(fl(torso))
    pen.fill_ellipse(f(0, 0), r * 0.9, r * 1.0)
    # torso outline: two sides, shoulder line through the neck, a belt
    if profile:
        pen.line(fl([(-0.4 * face, NECK_Y), (-0.6 * face, WAIST_Y), (-0.55 * face, HIP_Y)]))
        pen.line(fl([(0.45 * face, NECK_Y), (0.6 * face, 3.0), (0.5 * face, WAIST_Y), (0.55 * face, HIP_Y)]))
        pen.line(fl([(-0.55, HIP_Y), (0.55, HIP_Y)]), width=0.8)
    else:
        pen.line(fl([sl, (-waist_w, WAIST_Y), (-1.2, HIP_Y)]))
        pen.line(fl([sr, (waist_w, WAIST_Y), (1.2, HIP_Y)]))
        pen.line(fl([sl, (-0.35, NECK_Y)]))      # the neck stays open into the torso
        pen.line(fl([(0.35, NECK_Y), sr]))
        pen.line(fl([(-waist_w, WAIST_Y + 0.4), (waist_w, WAIST_Y + 0.4)]), width=0.7)
        pen.line(fl([(-0.35, NECK_Y), (-0.3, 0.85)]), width=0.8)
        pen.line(fl([(0.35, NECK_Y), (0.3, 0.85)]), width=0.8)
    # limbs: thick single strokes, feet and hands
    for k in ("leg_l", "leg_r"):
        hip, knee, ankle = j[k]
        pen.line(fl([hip, knee, ankle]), width=1.4)
        out = face if profile else (-1 if k == "leg_l" else 1)
        pen.line(fl([ankle, (ankle[0] + 0.9 * out, ankle[1] + 0.2)]), width=1.4)
    for k in ("arm_l", "arm_r"):
        sh, el, wr = j[k]
        pen.line(fl([sh, el, wr]), width=1.3)
        pen.dot(f(*wr), r * 0.2)
    if scene.pose == "pointing":
        el, wr = np.array(j["arm_r"][1]), np.array(j["arm_r"][2])
        pen.line(fl([wr, wr + 0.6 * (wr - el) / np.linalg.norm(wr - el)]), width=0.8)
    # head
    tilt = pen.rng.normal(0, 0.08)
    a0 = pen.rng.uniform(0, 2 * math.pi)
    pen.ellipse(f(0, 0), r * 0.88, r * 1.0, a0=a0, a1=a0 + 2 * math.pi + pen.rng.uniform(0.05, 0.3), tilt=tilt)
    if details:
        gaze = 0.35 * face if profile else pen.rng.uniform(-0.1, 0.1)
        eyes = [(0.45 * face, -0.05)] if profile else [(-0.3 + gaze, -0.05), (0.3 + gaze, -0.05)]
        for e in eyes:
            pen.dot(f(*e), r * 0.09)
        pen.line(fl([(gaze - 0.25 + (0.3 * face if profile else 0), 0.5),
                     (gaze + (0.3 * face if profile else 0), 0.58),
                     (gaze + 0.25 + (0.3 * face if profile else 0), 0.5)]), width=0.7)
        if "glasses" in scene.props:
            for e in eyes:
                pen.ellipse(f(*e), r * 0.21, r * 0.17, width=0.7)
            if not profile:
                pen.line(fl([(eyes[0][0] + 0.21, -0.05), (eyes[1][0] - 0.21, -0.05)]), width=0.6)
    if scene.hair == "short hair":
        pen.ellipse(f(0, -0.05), r * 0.98, r * 1.05, a0=math.pi * 1.05, a1=math.pi * 1.95)
        for x in (-0.4, 0.0, 0.4):
            pen.line(fl([(x, -1.0), (x + 0.25 * face, -0.6)]), width=0.6)
    elif scene.hair == "flowing hair":
        pen.ellipse(f(0, -0.05), r * 1.0, r * 1.05, a0=math.pi * 1.0, a1=math.pi * 2.0)
        for sgn in (-1, 1):
            pen.line(fl([(sgn * 0.98, 0.0), (sgn * 1.1, 1.2), (sgn * 1.05, 2.3)]), width=0.8)
    # props
    if "hat" in scene.props:
        pen.line(fl([(-1.55, -0.82), (1.55, -0.86)]), width=1.1)
        pen.line(fl([(-0.75, -0.84), (-0.7, -2.0), (0.7, -2.0), (0.75, -0.86)]))
    if "bag" in scene.props:
        pen.line(fl([sr, (-0.9, 5.2)]), width=0.8)
        pen.line(fl([(-1.9, 5.1), (-0.5, 5.1), (-0.5, 6.3), (-1.9, 6.3), (-1.9, 5.1)]))
    if "cup" in scene.props:
        hx, hy = j["arm_l"][2]
        pen.line(fl([(hx - 0.35, hy - 0.7), (hx - 0.25, hy + 0.15), (hx + 0.25, hy + 0.15), (hx + 0.35, hy - 0.7)]),
                 width=0.8)
        pen.ellipse(f(hx + 0.45, hy - 0.3), r * 0.18, r * 0.22, width=0.6, a0=-1.5, a1=1.5)
    if "sword" in scene.props:
        wr = np.array(j["arm_r"][2])
        tip = _sword_tip(j)
        d = (tip - wr) / np.linalg.norm(tip - wr)
        guard = wr + 0.5 * d
        n = np.array([-d[1], d[0]])
        pen.line(fl([guard, tip]), width=0.9)
        pen.line(fl([guard - 0.6 * n, guard + 0.6 * n]), width=1.0)
    # a ground stroke under the feet
    fy = _feet_y(j)
    x0 = min(j["leg_l"][-1][0], j["leg_r"][-1][0]) - 1.0
    x1 = max(j["leg_l"][-1][0], j["leg_r"][-1][0]) + 1.0
    pen.line(fl([(x0, fy + 0.1), (x1, fy + 0.1)]), width=0.6)


def _draw_strays(pen: _Pen, scene: _Scene) -> None:
    """Light construction strokes anywhere in the frame."""
    for _ in range(scene.n_strays):
        p = pen.rng.uniform(0.05, 0.95, 2)
        a = pen.rng.uniform(0, math.pi)
        length = pen.rng.uniform(0.05, 0.22)
        q = p + length * np.array([math.cos(a), math.sin(a)])
        mid = (p + q) / 2 + pen.rng.normal(0, 0.02, 2)
        pen.line([p, mid, q], width=0.6, ink=int(pen.rng.integers(120, 200)))


def draw_panel(seed: int, shot: str, size: int = 64) -> Panel:
    """Draw the scene of `seed` at framing `shot` ('cu', 'ms' or 'fs') as a `size` x `size` RGB panel."""
    if shot not in SHOT_KEYS:
        raise ToyworldError(f"Shot must be one of {', '.join(SHOT_KEYS)}, not {shot!r}.")
    if not isinstance(size, int) or not 16 <= size <= 2048:
        raise ToyworldError(f"Panel size must be an integer from 16 to 2048 pixels, not {size!r}.")
    scene = _sample_scene(seed)
    rng = np.random.default_rng([seed, 1 + SHOT_KEYS.index(shot)])
    j = _skeleton(scene, rng)
    r, cx, cy = _camera(scene, j, shot, rng)
    rb = math.sqrt(r * 0.052)           # the background is further away: it zooms less than the figure
    pen = _Pen(size, rng, scene.width, scene.ink, jitter=0.0025)
    _draw_strays(pen, scene)
    _draw_background(pen, scene, rb, cx, cy)
    _draw_figure(pen, scene, j, r, cx, cy)
    x0, y0, x1, y1 = _figure_box(scene, j)
    fy = _feet_y(j)
    geometry = {
        "head_center": (cx, cy), "head_radius": r,
        "figure_box": (cx + r * x0, cy + r * y0, cx + r * x1, cy + r * y1),
        "feet_y": cy + r * fy, "waist_y": cy + r * WAIST_Y, "hip_y": cy + r * HIP_Y,
        "feet_visible": cy + r * fy < 1.0,
    }
    tags, caption = tags_and_caption(seed)
    return Panel(pen.result(size), shot, tags, caption, geometry)


# ----------------------------------------------------------------------------------------------- datasets

def panel_seed(seed: int, index: int) -> int:
    """The seed of the `index`-th panel of a dataset made with `seed`."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] & 0x7FFFFFFF)


def write_dataset(folder: str, n_per_shot: int, size: int, seed: int, layout: str = "tags") -> list[str]:
    """Write `n_per_shot` panels of each shot as PNG + same-stem `.txt` tags into `folder`; returns the PNG paths.

    layout "tags": the shot is a tag ("close-up", "medium shot", "full shot") first in the .txt;
    "folders": images go to sub-folders named after the shot and the .txt has no shot;
    "none": no shot anywhere (base-model training).
    """
    if layout not in LAYOUTS:
        raise ToyworldError(f"Layout must be one of {', '.join(LAYOUTS)}, not {layout!r}.")
    if not isinstance(n_per_shot, int) or n_per_shot < 1:
        raise ToyworldError(f"n_per_shot must be a positive integer, not {n_per_shot!r}.")
    paths = []
    for k in range(n_per_shot * len(SHOT_KEYS)):
        shot = SHOT_KEYS[k % len(SHOT_KEYS)]
        panel = draw_panel(panel_seed(seed, k), shot, size)
        label = BY_KEY[shot].label
        sub = os.path.join(folder, label) if layout == "folders" else folder
        stem = os.path.join(sub, f"panel_{k:05d}")
        tags = ([label] if layout == "tags" else []) + panel.tags
        with atomic_path(stem + ".png") as tmp:
            panel.image.save(tmp, format="PNG")
        atomic_write_text(stem + ".txt", ", ".join(tags) + "\n")
        paths.append(stem + ".png")
    return paths

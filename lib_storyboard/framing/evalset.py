"""A labelled evaluation set built from photos that ship inside installed packages (nothing is downloaded).

Each annotated person (head top, chin, waist and feet heights in the source photo, measured by eye once) is framed
as a close-up (head and shoulders), a medium shot (head to waist or hips) and, where the feet are in the photo, a
full shot, at three aspect ratios and two margins. Photos without people (objects, a cat, big cats) give the
"no person" class.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class Person:
    photo: str            # key into PHOTOS
    cx: float             # horizontal centre of the body, source pixels
    top: float            # top of the head (hair)
    chin: float
    waist: float | None   # lowest line of a medium shot (hips, or the photo's bottom edge when it ends at the waist)
    feet: float | None    # soles, when the whole body is in the photo


# (package, path inside the package) of each photo.
PHOTOS = {
    "bus": ("ultralytics", "assets/bus.jpg"),
    "zidane": ("ultralytics", "assets/zidane.jpg"),
    "astronaut": ("skimage", "data/astronaut.png"),
    "camera": ("skimage", "data/camera.png"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    "coffee": ("skimage", "data/coffee.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "motorcycle": ("skimage", "data/motorcycle_left.png"),
    "lion": ("gradio", "test_data/lion.jpg"),
    "cheetah1": ("gradio", "test_data/cheetah1.jpg"),
    "cheetah2": ("gradio", "test_data/cheetah2.jpg"),
}
PEOPLE = (
    Person("bus", 145, 400, 475, 690, 900),
    Person("bus", 285, 405, 470, 690, 862),
    Person("zidane", 570, 200, 445, 720, None),
    Person("zidane", 985, 45, 255, 720, None),
    Person("astronaut", 225, 15, 170, 512, None),
    Person("camera", 220, 65, 195, 512, None),
    Person("grace_hopper", 270, 25, 335, None, None),
)
NO_PERSON = ("coffee", "chelsea", "rocket", "motorcycle", "lion", "cheetah1", "cheetah2")  # animals: hard negatives
ASPECTS = (1.0, 0.75, 1.5)   # width / height
SIDE = 512                    # every sample is scaled so its longer side is this


@dataclass
class Sample:
    name: str
    shot_key: str | None
    image: Image.Image


def photo_path(key: str) -> str | None:
    package, rel = PHOTOS[key]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], *rel.split("/"))
    return path if os.path.isfile(path) else None


def _frame(photo: Image.Image, cx: float, top: float, bottom: float, aspect: float) -> Image.Image:
    w_img, h_img = photo.size
    top, bottom = max(0.0, top), min(float(h_img), bottom)
    width = min(float(w_img), (bottom - top) * aspect)
    left = min(max(0.0, cx - width / 2), w_img - width)
    crop = photo.crop((round(left), round(top), round(left + width), round(bottom)))
    scale = SIDE / max(crop.size)
    return crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.LANCZOS)


def _framings(p: Person) -> list[tuple[str, str, float, float]]:
    """(shot key, variant, top, bottom) for one person."""
    head = p.chin - p.top
    out = [("cu", f"m{k}", p.top - 0.1 * head, p.chin + k * head) for k in (0.25, 0.5)]
    if p.waist is not None:
        out += [("ms", f"m{k}", p.top - 0.15 * head, p.waist + k * head) for k in (0.0, 0.4)]
    if p.feet is not None:
        out += [("fs", f"m{k}", p.top - k * head, p.feet + k * head) for k in (0.2, 0.6)]
    return out


def build_samples(step: int = 1) -> list[Sample]:
    """Every labelled sample (every `step`-th framing, for a quicker check); photos whose package is missing are
    left out."""
    samples, photos = [], {}
    for key in {p.photo for p in PEOPLE} | set(NO_PERSON):
        path = photo_path(key)
        if path:
            photos[key] = Image.open(path).convert("RGB")
    n = 0
    for i, p in enumerate(PEOPLE):
        if p.photo not in photos:
            continue
        for shot, variant, top, bottom in _framings(p):
            for aspect in ASPECTS:
                if n % step == 0:
                    img = _frame(photos[p.photo], p.cx, top, bottom, aspect)
                    samples.append(Sample(f"{p.photo}{i}_{shot}_{variant}_a{aspect}", shot, img))
                n += 1
    for key in NO_PERSON:
        if key in photos:
            im = photos[key].copy()
            im.thumbnail((SIDE, SIDE))
            samples.append(Sample(key, None, im))
    return samples

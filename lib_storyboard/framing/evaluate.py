"""Accuracy of the shot classifier on a labelled set: a confusion matrix over close-up / medium / full / none."""
from __future__ import annotations

from collections.abc import Callable, Iterable

from PIL import Image

from ..shots import SHOTS
from .classify import ShotGuess, classify_image

CLASSES: tuple[str | None, ...] = tuple(s.key for s in SHOTS) + (None,)
NAMES = {None: "none", **{s.key: s.key for s in SHOTS}}


class Confusion:
    """Counts of (true shot, predicted shot); None is "no person"."""

    def __init__(self, classes: tuple = CLASSES) -> None:
        self.classes = classes
        self.counts = {(t, p): 0 for t in classes for p in classes}
        self.misses: list[tuple[str, str | None, ShotGuess]] = []

    def add(self, name: str, truth: str | None, guess: ShotGuess) -> None:
        self.counts[(truth, guess.shot_key)] += 1
        if truth != guess.shot_key:
            self.misses.append((name, truth, guess))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def accuracy(self) -> float:
        return sum(self.counts[(c, c)] for c in self.classes) / self.total if self.total else 0.0

    @property
    def answered_accuracy(self) -> float:
        """Accuracy over the images of people it named a shot for (abstaining as "none" is not a wrong label)."""
        named = [(t, p) for (t, p), n in self.counts.items() for _ in range(n) if t is not None and p is not None]
        return sum(t == p for t, p in named) / len(named) if named else 0.0

    def rows(self) -> list[str]:
        """The matrix as text: one row per true class, columns are predictions."""
        present = [c for c in self.classes if any(self.counts[(c, p)] + self.counts[(p, c)] for p in self.classes)]
        head = "true \\ predicted " + " ".join(f"{NAMES[c]:>5}" for c in present)
        lines = [head]
        for t in present:
            lines.append(f"{NAMES[t]:<17}" + " ".join(f"{self.counts[(t, p)]:>5}" for p in present))
        lines.append(f"accuracy {self.accuracy:.1%} on {self.total} images; {self.answered_accuracy:.1%} of the shots "
                     f"it named for people were right")
        return lines

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "answered_accuracy": self.answered_accuracy, "total": self.total,
                "matrix": {NAMES[t]: {NAMES[p]: self.counts[(t, p)] for p in self.classes} for t in self.classes},
                "misses": [{"name": n, "truth": NAMES[t], **g.as_dict()} for n, t, g in self.misses]}


def evaluate(samples: Iterable, transform: Callable[[Image.Image], Image.Image] | None = None,
             classify: Callable[[Image.Image], ShotGuess] = classify_image) -> Confusion:
    """Classify every sample (`name`, `shot_key`, `image`), after `transform` (e.g. a sketch style) if given."""
    conf = Confusion()
    for s in samples:
        image = transform(s.image) if transform else s.image
        conf.add(s.name, s.shot_key, classify(image))
    return conf

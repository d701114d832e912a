"""Validation of a trained storyboard model: panels drawn with each shot token, read back by the shot classifier.

Rows of the confusion matrix are the token in the prompt, columns what the classifier sees (or "none": no person
found). The same prompts and seeds drawn with the *untrained* tokens (their initial words, no LoRA) give the chance
level the trained model has to beat. Who draws is the caller's business: the host's txt2img, or diffusers here.
"""
from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

from ..formats.atomic import atomic_group, atomic_write_bytes, atomic_write_text
from ..shots import SHOTS
from .classify import ShotGuess, classify_image
from .evaluate import Confusion

Draw = Callable[[list[str], list[int]], list[Image.Image]]   # (prompts, seeds) → one image each
REPORT = "validation.json"
SHEET = "validation_sheet.png"
BASELINE_SHEET = "baseline_sheet.png"


@dataclass
class Panel:
    token: str            # shot key of the trigger in the prompt
    prompt: str
    seed: int
    image: Image.Image
    guess: ShotGuess


@dataclass
class Validation:
    trained: Confusion
    panels: list[Panel] = field(default_factory=list)
    baseline: Confusion | None = None
    baseline_panels: list[Panel] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = ["trained tokens:"] + ["  " + r for r in self.trained.rows()]
        if self.baseline is not None:
            out += ["untrained tokens (chance level):"] + ["  " + r for r in self.baseline.rows()]
        return out

    def as_dict(self) -> dict:
        def panels(ps):
            return [{"token": p.token, "prompt": p.prompt, "seed": p.seed, **p.guess.as_dict()} for p in ps]
        return {"trained": self.trained.as_dict(), "panels": panels(self.panels),
                "baseline": self.baseline.as_dict() if self.baseline else None,
                "baseline_panels": panels(self.baseline_panels)}


def panel_prompts(prompts: list[str], per_token: int, seed: int = 0) -> list[tuple[str, str, int]]:
    """(shot key, full prompt, seed): `per_token` panels per token, cycling through `prompts`; panel i of every
    token uses the same prompt and seed, so the tokens are compared on equal terms."""
    prompts = [p.strip() for p in prompts if p and p.strip()]
    if not prompts:
        raise ValueError("Validation needs at least one prompt (e.g. \"a character standing in a forest\").")
    if per_token < 1:
        raise ValueError(f"Panels per token must be at least 1, not {per_token}.")
    return [(s.key, f"{s.trigger}, {prompts[i % len(prompts)]}", seed + i) for s in SHOTS for i in range(per_token)]


def _run(draw: Draw, jobs, classify, on_progress) -> tuple[Confusion, list[Panel]]:
    conf, panels = Confusion(), []
    for s in SHOTS:
        mine = [j for j in jobs if j[0] == s.key]
        images = draw([p for _, p, _ in mine], [sd for _, _, sd in mine])
        for (key, prompt, sd), im in zip(mine, images):
            guess = classify(im)
            conf.add(f"{key} seed {sd}", key, guess)
            panels.append(Panel(key, prompt, sd, im, guess))
            if on_progress is not None:
                on_progress(len(panels), len(jobs))
    return conf, panels


def validate_model(draw: Draw, prompts: list[str], per_token: int, seed: int = 0, baseline_draw: Draw | None = None,
                   classify: Callable[[Image.Image], ShotGuess] = classify_image,
                   on_progress: Callable[[int, int], None] | None = None) -> Validation:
    """Draw `per_token` panels per token with `draw` (and with `baseline_draw`, the untrained tokens, when given)
    and classify every panel."""
    jobs = panel_prompts(prompts, per_token, seed)
    trained, panels = _run(draw, jobs, classify, on_progress)
    result = Validation(trained, panels)
    if baseline_draw is not None:
        result.baseline, result.baseline_panels = _run(baseline_draw, jobs, classify, on_progress)
    return result


def write_validation(result: Validation, out: str) -> list[str]:
    """The report and the sheets into `out` (created; nothing else touched), all or nothing."""
    from ..dataset_builder.sheet import contact_sheet

    def sheet(panels):
        buf = io.BytesIO()
        contact_sheet([(p.token, p.image, f"-> {p.guess.shot_key or 'none'} {p.guess.confidence:.2f}")
                       for p in panels]).save(buf, "PNG")
        return buf.getvalue()

    files = [os.path.join(out, REPORT), os.path.join(out, SHEET)]
    try:
        with atomic_group():
            atomic_write_text(files[0], json.dumps(result.as_dict(), indent=1) + "\n")
            atomic_write_bytes(files[1], sheet(result.panels))
            if result.baseline_panels:
                files.append(os.path.join(out, BASELINE_SHEET))
                atomic_write_bytes(files[2], sheet(result.baseline_panels))
    except OSError as e:
        raise ValueError(f"Cannot write the validation into {out}: {e.strerror or e}; nothing was written.") from None
    return files

"""Drawing the panels. The board code only needs a `draw(prompt, negative, seed, width, height) -> PIL image`:
the host supplies its txt2img, the standalone CLI the diffusers adapter with a storyboard model below.
"""
from __future__ import annotations

import contextlib
import os
from typing import Callable

from PIL import Image

from .options import BoardOptions
from .prompts import PanelPlan

DrawPanel = Callable[[str, str, int, int, int], Image.Image]


def draw_panels(plans: list[PanelPlan], options: BoardOptions, draw: DrawPanel,
                on_panel: Callable[[int, int], None] | None = None) -> list[Image.Image]:
    """Every panel, in order; `on_panel(done, total)` after each (a progress bar)."""
    images = []
    for i, plan in enumerate(plans, 1):
        image = draw(plan.prompt, plan.negative, plan.seed, options.width, options.height)
        if not isinstance(image, Image.Image):
            raise TypeError(f"The panel drawer returned {type(image).__name__} for panel {plan.number}, not an image.")
        images.append(image.convert("RGB"))
        if on_panel:
            on_panel(i, len(plans))
    return images


@contextlib.contextmanager
def diffusers_drawer(adapter, options: BoardOptions, storyboard_file: str | None = None):
    """A DrawPanel over a diffusers adapter: with a storyboard model, its shot-token vectors and LoRA are hooked
    in for the duration (the training preview's sampler, so panels match what the previews showed)."""
    from ..training.preview import sample

    tokens = {}
    hooked = contextlib.nullcontext()
    if storyboard_file:
        from ..storyboard_models import token_vectors
        from ..training.lora import lora_attached

        if not os.path.isfile(storyboard_file):
            raise ValueError(f"The storyboard model {storyboard_file} does not exist.")
        try:
            tokens = token_vectors(storyboard_file)
        except ValueError:
            raise
        except Exception as e:   # not a safetensors file at all
            raise ValueError(f"{os.path.basename(storyboard_file)} is not a storyboard model ({e}).") from e
        hooked = lora_attached(adapter, storyboard_file)

    def draw(prompt: str, negative: str, seed: int, width: int, height: int) -> Image.Image:
        return sample(adapter, [prompt], tokens, [seed], (width, height), steps=options.steps, cfg=options.cfg,
                      negative=negative)[0]

    with hooked:
        yield draw

"""Drawing the panels. The board code only needs a `draw(prompt, negative, seed, width, height, pose="none") -> PIL
image` (`pose`: the panel's pose name, composition.POSES or "none"): the host supplies its txt2img, the standalone
CLI the diffusers adapter with a storyboard model below. A drawer
that knows the panel's exact generation parameters (the host's infotext) puts them in `image.info["parameters"]`;
the panel file then carries them instead of the board's own summary.
"""
from __future__ import annotations

import contextlib
import os
from typing import Callable, Protocol

from PIL import Image

from .options import BoardOptions
from .prompts import PanelPlan, controlnet_need
from .scenes import SceneList


class DrawPanel(Protocol):
    def __call__(self, prompt: str, negative: str, seed: int, width: int, height: int,
                 pose: str = "none") -> Image.Image: ...


def draw_panels(plans: list[PanelPlan], options: BoardOptions, draw: DrawPanel,
                on_panel: Callable[[int, int], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> list[Image.Image]:
    """The panels in order; `on_panel(done, total)` after each (a progress bar). When `should_stop()` turns true
    the drawing ends early: the panel it cut short is dropped, so the list holds only whole panels."""
    images = []
    for i, plan in enumerate(plans, 1):
        if should_stop and should_stop():
            break
        image = draw(plan.prompt, plan.negative, plan.seed, options.width, options.height, pose=plan.pose)
        if not isinstance(image, Image.Image):
            raise TypeError(f"The panel drawer returned {type(image).__name__} for panel {plan.number}, not an image.")
        if should_stop and should_stop():
            break
        rgb = image.convert("RGB")
        if "parameters" in image.info:
            rgb.info["parameters"] = image.info["parameters"]
        images.append(rgb)
        if on_panel:
            on_panel(i, len(plans))
    return images


@contextlib.contextmanager
def diffusers_drawer(adapter, options: BoardOptions, storyboard_file: str | None = None, controlnet=None,
                     scenes: SceneList | None = None):
    """A DrawPanel over a diffusers adapter: with a storyboard model, its shot-token vectors and LoRA are hooked
    in for the duration (the training preview's sampler, so panels match what the previews showed). With a
    composition or scenes with a pose (`scenes`, the board's list), `controlnet` (a diffusers ControlNetModel)
    guides each posed panel by its pose image, framed as its shot."""
    from ..composition.panel import panel_pose
    from ..training.preview import sample

    need = controlnet_need(options, scenes)
    if need and controlnet is None:
        raise ValueError(f"{need} needs an openpose ControlNet (--controlnet with an SD1.5 ControlNet "
                         f".safetensors).")

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

    def draw(prompt: str, negative: str, seed: int, width: int, height: int, pose: str = "none") -> Image.Image:
        hint = panel_pose(pose, prompt, width, height)
        guide = contextlib.nullcontext()
        if hint is not None:
            if controlnet is None:   # a caller that did not pass the board's scenes, so was not refused above
                raise ValueError(f"The pose {pose!r} needs an openpose ControlNet (--controlnet with an SD1.5 "
                                 f"ControlNet .safetensors).")
            from ..composition.controlnet_diffusers import guided, hint_tensor

            guide = guided(adapter, controlnet, hint_tensor(hint, width, height), options.composition_weight)
        with guide:
            return sample(adapter, [prompt], tokens, [seed], (width, height), steps=options.steps,
                          cfg=options.cfg, negative=negative)[0]

    with hooked:
        yield draw

"""An `inpaint(job, image) -> image` on diffusers, for the standalone tool and the tests (the host uses its own
img2img instead). It does what A1111's "only masked" inpaint does: crop the job's box, resize it to the inpaint
size, inpaint under the feathered mask, resize back, paste through the feathered mask. Pixels outside the crop
box, and outside the feathered mask, are never changed.
"""
from __future__ import annotations

import re
import time

import torch
from PIL import Image

from .plan import RegionJob
from .prompts import EXTRA_NETWORK_RE

# A1111 sampler names → diffusers scheduler class names, for the `sampler` override.
SAMPLERS: dict[str, str] = {
    "Euler": "EulerDiscreteScheduler",
    "Euler a": "EulerAncestralDiscreteScheduler",
    "DDIM": "DDIMScheduler",
    "DPM++ 2M": "DPMSolverMultistepScheduler",
    "UniPC": "UniPCMultistepScheduler",
}


def strip_extra_networks(prompt: str) -> str:
    """diffusers has no `<lora:…>` syntax: drop the tags (the standalone tool applies LoRAs to the pipe itself)."""
    return re.sub(r"\s{2,}", " ", EXTRA_NETWORK_RE.sub("", prompt)).strip()


def _steps(steps: int, strength: float) -> int:
    """diffusers runs int(steps * strength) steps and refuses zero; A1111 always runs at least one."""
    while int(steps * strength) < 1:
        steps += 1
    return steps


class DiffusersInpainter:
    """Wraps a `StableDiffusionInpaintPipeline` (a 9-channel inpaint UNet, or a 4-channel one, which diffusers
    handles by blending the known latents back at each step)."""

    def __init__(self, pipe, steps: int = 20, cfg_scale: float = 7.0, clip_skip: int | None = None) -> None:
        self.pipe = pipe
        self.steps = steps
        self.cfg_scale = cfg_scale
        self.clip_skip = clip_skip
        self.calls = 0            # pipeline calls made, and the seconds they took (for the benchmark)
        self.pipe_seconds = 0.0

    @classmethod
    def from_components(cls, comps, **kwargs) -> DiffusersInpainter:
        """Build the pipeline from `models.tiny.SDComponents`-like parts (unet, vae, text_encoder, tokenizer,
        scheduler)."""
        from diffusers import StableDiffusionInpaintPipeline

        pipe = StableDiffusionInpaintPipeline(
            vae=comps.vae, text_encoder=comps.text_encoder, tokenizer=comps.tokenizer, unet=comps.unet,
            scheduler=comps.scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe, **kwargs)

    def _scheduler(self, sampler: str | None):
        if sampler is None:
            return self.pipe.scheduler
        if sampler not in SAMPLERS:
            raise ValueError(f"Sampler {sampler!r} has no diffusers equivalent here; use one of "
                             f"{', '.join(SAMPLERS)}.")
        import diffusers

        return getattr(diffusers, SAMPLERS[sampler]).from_config(self.pipe.scheduler.config)

    def __call__(self, job: RegionJob, image: Image.Image) -> Image.Image:
        if job.denoise <= 0:
            return image  # nothing would change
        box = job.crop_box
        crop = image.convert("RGB").crop(box)
        paste = job.paste_mask().crop(box)
        w, h = job.inpaint_size
        original_scheduler = self.pipe.scheduler
        self.pipe.scheduler = self._scheduler(job.sampler)
        try:
            t0 = time.perf_counter()
            out = self.pipe(
                prompt=strip_extra_networks(job.prompt), negative_prompt=strip_extra_networks(job.negative_prompt),
                image=crop.resize((w, h), Image.LANCZOS), mask_image=paste.resize((w, h), Image.BILINEAR),
                height=h, width=w, strength=job.denoise, num_inference_steps=_steps(job.steps or self.steps, job.denoise),
                guidance_scale=self.cfg_scale if job.cfg_scale is None else job.cfg_scale,
                clip_skip=job.clip_skip or self.clip_skip,
                generator=torch.Generator("cpu").manual_seed(job.seed), output_type="pil").images[0]
            self.pipe_seconds += time.perf_counter() - t0
            self.calls += 1
        finally:
            self.pipe.scheduler = original_scheduler
        # Composite in the input's own mode so that pixels outside the feathered mask keep their exact bytes.
        redrawn = Image.composite(out.resize(crop.size, Image.LANCZOS).convert(image.mode), image.crop(box), paste)
        result = image.copy()
        result.paste(redrawn, box[:2])
        return result

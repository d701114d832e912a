"""One detailer region redrawn through the host's own img2img (inpaint), with the generation's settings, the
region's prompt and seed, and the storyboard model's token vectors."""
from collections.abc import Callable

import torch
from modules import devices, processing, sd_samplers, shared
from PIL import Image

from ..detailer.args import SCRIPT_TITLE
from ..detailer.plan import RegionJob
from . import patches
from .comments import problem
from .triggers import register_vectors


def region_inpainter(p, idx: int) -> Callable[[RegionJob, Image.Image], Image.Image]:
    """The callable the detailer core redraws each region with: an img2img inpaint of `p`'s settings."""
    def inpaint(job: RegionJob, image: Image.Image) -> Image.Image:
        w, h = job.inpaint_size
        sampler = job.sampler or p.sampler_name
        q = processing.StableDiffusionProcessingImg2Img(
            sd_model=shared.sd_model, outpath_samples=p.outpath_samples, outpath_grids=p.outpath_grids,
            prompt=job.prompt, negative_prompt=job.negative_prompt, styles=[],
            seed=job.seed, subseed=p.all_subseeds[idx], subseed_strength=p.subseed_strength,
            sampler_name=sd_samplers.samplers_map.get(sampler.lower(), sampler),
            scheduler=getattr(p, "scheduler", None), batch_size=1, n_iter=1,
            steps=job.steps or p.steps, cfg_scale=p.cfg_scale if job.cfg_scale is None else job.cfg_scale,
            width=w, height=h, restore_faces=False, tiling=p.tiling,
            do_not_save_samples=True, do_not_save_grid=True, do_not_reload_embeddings=True,
            init_images=[image], mask=job.mask, mask_blur=job.mask_blur, inpainting_fill=1,
            inpaint_full_res=job.only_masked, inpaint_full_res_padding=job.padding,
            denoising_strength=job.denoise, resize_mode=0)
        # No recursion: the inner pass runs no script at all (LoRAs still apply: extra networks are not scripts).
        q.scripts = None
        q.script_args = []
        q._storyboard_inner = True
        # Its own condition cache: the class-level one is keyed by prompt text, not by the vectors behind it.
        q.cached_c = [None, None]
        q.cached_uc = [None, None]
        q._storyboard_vectors = getattr(p, "_storyboard_vectors", None)
        if q._storyboard_vectors:
            # So that <cu_trg> means the trained vectors when the region prompt is encoded.
            patches.before_conditioning(q, lambda: register_vectors(q))
        try:
            # The host's img2img samples its VAE latent with torch's global RNG, unseeded, so a region would depend
            # on whatever ran before it; seeding it from the region's seed (in a fork, leaving the host's stream
            # as it was) makes the region reproducible from the infotext.
            with torch.random.fork_rng(devices=[]), patches.clip_skip_for(q, job.clip_skip):
                torch.manual_seed(job.seed)
                processed = processing.process_images(q)
        except devices.NansException as e:
            problem(p, f"{SCRIPT_TITLE}: region {job.region_index + 1} of pass {job.pass_index + 1} was left as "
                        f"it was because the model produced NaNs ({str(e).splitlines()[0]}).")
            return image
        finally:
            q.close()
        if not processed.images:
            return image  # interrupted before the region was drawn
        out = processed.images[0].convert(image.mode)
        if out.size != image.size:
            # Whole-image mode works at the size rounded to 8: scale back and keep unmasked pixels exactly.
            out = Image.composite(out.resize(image.size, Image.LANCZOS), image, job.paste_mask())
        return out

    return inpaint

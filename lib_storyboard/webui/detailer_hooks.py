"""The detailer's generation hooks: `process` validates the passes and records them in the infotext (and sets up
detail-only mode), `postprocess_image` details each image of the batch through the host's own img2img."""
import os
from typing import Any
from collections.abc import Sequence

from modules import images, paths, processing, shared
from PIL import Image

from ..detailer.args import (
    DETAIL_ONLY_KEY, SCRIPT_TITLE, DetailerArgsError, DetailerRun, parse_script_args, to_infotext)
from ..detailer.plan import RegionJob
from ..detailer.run import catalog_detect, run_detailer
from ..detection import DetectorError
from ..formats.atomic import atomic_write_text
from . import patches, settings
from .comments import problem
from .detectors import catalog, check_for_host
from .region_inpaint import region_inpainter


def process(p, script_args: Sequence[Any]) -> None:
    """`Script.process`: validate, record the settings in the infotext, set up detail-only mode."""
    if getattr(p, "_storyboard_inner", False):
        return
    try:
        run = parse_script_args(script_args, settings.max_passes())
        if not run.active:
            return
        check_for_host(run.passes)
    except DetailerArgsError as e:
        problem(p, f"{e} The detailer did not run.")
        return
    is_img2img = bool(getattr(p, "init_images", None))
    p._storyboard_detailer = run
    p.extra_generation_params.update(to_infotext(run.passes))
    if run.detail_only and is_img2img:
        p.extra_generation_params[DETAIL_ONLY_KEY] = True
        # `postprocess_image` swaps the untouched init image back in (the float round trip through the host's
        # uint8 conversion is not byte-exact) before detailing it.
        init_images = [img.convert("RGB") for img in p.init_images]
        p._storyboard_detail_only = init_images
        p.width, p.height = init_images[0].size   # the infotext's Size is the image's
        patches.skip_base_pass(p, init_images)


def postprocess_image(p, pp) -> None:
    """`Script.postprocess_image`: detail this image (every image of a batch comes through here)."""
    run: DetailerRun | None = getattr(p, "_storyboard_detailer", None)
    if run is None or getattr(p, "_storyboard_inner", False):
        return
    i = p.batch_index
    idx = p.iteration * p.batch_size + i
    originals = getattr(p, "_storyboard_detail_only", None)
    if originals:
        pp.image = originals[i % len(originals)]
    before = pp.image

    seed, prompt = p.all_seeds[idx], p.all_prompts[idx]
    if settings.get(settings.OPT_SAVE_BEFORE, False) and p.save_samples():
        _save(p, before, idx, "-before-detailer")

    state = shared.state

    def on_pass(pass_index: int, jobs: list[RegionJob]) -> None:
        state.job_count += len(jobs)  # each region's img2img advances job_no by one

    def on_region(done: int, planned: int) -> None:
        state.textinfo = f"{SCRIPT_TITLE}: region {done} of {planned}"

    params_txt = os.path.join(paths.data_path, "params.txt")
    saved_params = _read(params_txt)
    try:
        result = run_detailer(
            before, run.passes, catalog_detect(catalog()), region_inpainter(p, idx),
            main_prompt=prompt, main_negative=p.all_negative_prompts[idx], seed=seed,
            should_stop=lambda: bool(state.interrupted or state.skipped), on_pass=on_pass, on_region=on_region)
    except DetectorError as e:
        problem(p, f"{SCRIPT_TITLE}: {e}")
        return
    finally:
        if saved_params is not None:  # each inner img2img rewrote params.txt with its own infotext
            atomic_write_text(params_txt, saved_params)
    pp.image = result.image
    if settings.get(settings.OPT_SAVE_MASKS, False) and p.save_samples():
        for k, preview in enumerate(result.previews):
            _save(p, preview, idx, f"-detailer-mask-{k + 1}")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf8") as f:
            return f.read()
    except OSError:
        return None


def _save(p, image: Image.Image, idx: int, suffix: str) -> None:
    info = processing.create_infotext(p, p.all_prompts, p.all_seeds, p.all_subseeds, None, p.iteration,
                                      p.batch_index)
    images.save_image(image, p.outpath_samples, "", p.all_seeds[idx], p.all_prompts[idx],
                      shared.opts.samples_format, info=info, p=p, suffix=suffix)

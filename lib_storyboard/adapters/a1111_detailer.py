"""A1111 glue of the after-detailer: settings, the accordion UI, the hooks the script calls, the region inpaint through
the host's own img2img, request validation for the API and the /storyboard/v1/detailer routes.

Host modules are imported inside functions (this file is only used from the host's process). No
`from __future__ import annotations` here: FastAPI reads the request validator's annotations at run time.
"""
import contextlib
import os
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from PIL import Image

from ..detailer.args import (
    SCRIPT_TITLE, DetailerArgsError, DetailerRun, PassArgs, from_infotext, json_schema, parse_script_args, to_infotext)
from ..detailer.form import OPTIONAL, form_keys, form_to_pass, pass_to_form
from ..detailer.plan import RegionJob
from ..detailer.run import registry_detect, run_detailer
from ..detection import DetectorError, DetectorRegistry
from ..detection import mediapipe_face
from ..formats.atomic import atomic_write_text
from .a1111_host import register_vectors, storyboard_dir

OPT_MAX_PASSES = "storyboard_detailer_max_passes"
OPT_SAVE_BEFORE = "storyboard_detailer_save_before"
OPT_SAVE_MASKS = "storyboard_detailer_save_masks"
DEFAULT_MAX_PASSES = 2
DETAIL_ONLY_KEY = f"{SCRIPT_TITLE} detail-only"
ROUTE_PREFIX = "/storyboard/v1/detailer"


# -- settings ---------------------------------------------------------------------------------------------------
def add_settings() -> None:
    """Called from `on_ui_settings`."""
    import gradio as gr
    from modules import shared

    section = ("storyboard", "Storyboard")
    shared.opts.add_option(OPT_MAX_PASSES, shared.OptionInfo(
        DEFAULT_MAX_PASSES, "Detailer passes (tabs in the Storyboard detailer accordion)", gr.Slider,
        {"minimum": 1, "maximum": 6, "step": 1}, section=section).needs_reload_ui())
    shared.opts.add_option(OPT_SAVE_BEFORE, shared.OptionInfo(
        False, "Detailer: also save each image as it was before detailing", section=section))
    shared.opts.add_option(OPT_SAVE_MASKS, shared.OptionInfo(
        False, "Detailer: also save a preview of the detections and the masks redrawn", section=section))


def max_passes() -> int:
    from modules import shared
    try:
        return max(1, int(shared.opts.data.get(OPT_MAX_PASSES, DEFAULT_MAX_PASSES)))
    except (TypeError, ValueError):
        return DEFAULT_MAX_PASSES


# -- detectors --------------------------------------------------------------------------------------------------
_registry: Optional[DetectorRegistry] = None
_registry_lock = threading.Lock()


def yolo_folders() -> Tuple[str, str]:
    """(the host's adetailer folder, ours). Users who run adetailer already have their models in the first."""
    from modules import paths
    return os.path.join(paths.models_path, "adetailer"), os.path.join(storyboard_dir(), "detectors")


@contextlib.contextmanager
def trusted_unpickle():
    """A1111 replaces `torch.load` with a restricted unpickler that refuses ultralytics pickles (and returns None
    rather than raising). The registry only ever loads `.pt` files from the model folders or its own download, so for
    exactly those loads the host's original loader, `modules.safe.unsafe_torch_load`, is put back."""
    import torch
    from modules import safe

    previous = torch.load
    torch.load = safe.unsafe_torch_load
    try:
        yield
    finally:
        torch.load = previous


def _yolo_device() -> str:
    from modules import devices, shared
    if getattr(shared.cmd_opts, "lowvram", False) or getattr(shared.cmd_opts, "medvram", False):
        return "cpu"  # keep VRAM for the UNet, as the host's low-memory modes intend
    return str(devices.device)


def registry() -> DetectorRegistry:
    """The process's detector registry; our own models folder is created on first use."""
    global _registry
    from modules import shared

    with _registry_lock:
        if _registry is None:
            host_dir, our_dir = yolo_folders()
            os.makedirs(our_dir, exist_ok=True)
            _registry = DetectorRegistry(
                yolo_folders=[host_dir], download_dir=our_dir,
                allow_download=not getattr(shared.cmd_opts, "storyboard_no_download", False),
                unpickle_context=trusted_unpickle, device=_yolo_device())
        return _registry


def detector_names() -> List[str]:
    """Names for the dropdown, without importing mediapipe or ultralytics (they load when a pass first runs)."""
    return list(mediapipe_face.MODELS) + registry().yolo.names()


def default_detector() -> str:
    return "face_yolov8n.pt" if "face_yolov8n.pt" in registry().yolo.names() else "mediapipe_face_short"


# -- checks shared by the request validator and process() -------------------------------------------------------
def check_for_host(passes: Sequence[PassArgs]) -> None:
    """What pydantic cannot know: the sampler and the detector must exist here. Raises DetailerArgsError."""
    from modules import sd_samplers

    names = set(detector_names())
    for number, p in enumerate(passes, 1):
        if not p.enabled:
            continue
        where = f"{SCRIPT_TITLE} pass {number}"
        if p.sampler is not None and p.sampler not in sd_samplers.all_samplers_map \
                and p.sampler.lower() not in sd_samplers.samplers_map:
            raise DetailerArgsError(f"{where}: field 'sampler': unknown sampler {p.sampler!r}; see "
                                    f"/sdapi/v1/samplers for the names.")
        if p.detector not in names:
            raise DetailerArgsError(f"{where}: field 'detector': {p.detector!r} is not available here; choose one of "
                                    f"{', '.join(sorted(names))}.")


def request_error(body: Any, is_img2img: bool) -> Optional[str]:
    """The one-sentence problem with a txt2img/img2img request's detailer arguments, or None."""
    if not isinstance(body, dict):
        return None
    scripts_arg = body.get("alwayson_scripts") or {}
    if not isinstance(scripts_arg, dict):
        return None
    for name, entry in scripts_arg.items():
        if str(name).lower() != SCRIPT_TITLE.lower():
            continue
        if not isinstance(entry, dict) or "args" not in entry:
            return None
        args = entry["args"]
        if not isinstance(args, list):
            return f'{SCRIPT_TITLE}: "args" must be a list: [enabled, {{pass 1}}, ..., detail_only].'
        try:
            run = parse_script_args(args, max_passes(), strict=True)
            if run.detail_only and not is_img2img:
                raise DetailerArgsError(f"{SCRIPT_TITLE}: detail-only mode (the boolean after the passes) is for "
                                        f"img2img; txt2img has no init image to detail.")
            if run.enabled:
                check_for_host(run.passes)
        except DetailerArgsError as e:
            return str(e)
    return None


def install_request_validation(app) -> None:
    """Answer 422 with the field named when a txt2img/img2img request carries bad detailer arguments.

    Script hooks cannot do this: A1111 catches every exception a hook raises and only prints it, so the request
    would succeed without the detailer. Instead a dependency is added to the host's own two routes; it runs after
    their --api-auth dependency and reads the JSON body FastAPI has already parsed (and cached on the request).
    """
    from fastapi import Depends, HTTPException, Request
    from fastapi.dependencies.utils import get_parameterless_sub_dependant
    from fastapi.routing import APIRoute

    def make_check(is_img2img: bool):
        async def check_storyboard_detailer_args(request: Request):
            try:
                body = await request.json()
            except Exception:
                return  # not JSON: the host's own validation answers
            problem = request_error(body, is_img2img)
            if problem:
                raise HTTPException(status_code=422, detail=problem)
        return check_storyboard_detailer_args

    targets = {"/sdapi/v1/txt2img": False, "/sdapi/v1/img2img": True}
    for route in app.routes:
        if not isinstance(route, APIRoute) or route.path not in targets or getattr(route, "_storyboard_checked", 0):
            continue
        dep = Depends(make_check(targets[route.path]))
        route.dependencies.append(dep)
        # The request handler holds this same `dependant` object, so the new check takes effect at once.
        route.dependant.dependencies.append(get_parameterless_sub_dependant(depends=dep, path=route.path_format))
        route._storyboard_checked = True


def add_routes(app) -> None:
    from fastapi import Depends

    from .a1111_api import _auth_dependency, api_enabled, public_path

    if not api_enabled():
        return
    deps = [Depends(_auth_dependency())]

    @app.get(f"{ROUTE_PREFIX}/schema", dependencies=deps)
    def detailer_schema():
        return json_schema(max_passes())

    @app.get(f"{ROUTE_PREFIX}/models", dependencies=deps)
    def detailer_models():
        reg = registry()
        models = [{k: public_path(v) if k == "path" and v else v for k, v in m.to_dict().items()}
                  for m in reg.models()]
        return {"models": models, "unavailable": {k: v for k, v in reg.availability().items() if v},
                "folders": [public_path(f) for f in yolo_folders()], "downloads": reg.yolo.allow_download}


def on_app_started(app) -> None:
    install_request_validation(app)
    add_routes(app)


# -- UI -----------------------------------------------------------------------------------------------------------
def default_pass(number: int) -> PassArgs:
    """Pass 1 is on by default (once the accordion is), later passes off: an API call that sends fewer passes
    than there are slots leaves the rest at these defaults."""
    return PassArgs(enabled=number == 1, detector=default_detector())


def _pass_widgets(script, number: int, samplers: List[str]):
    """Build one pass tab's widgets; returns [(key, component)] in a fixed order."""
    import gradio as gr

    d = pass_to_form(default_pass(number))
    eid = lambda key: script.elem_id(f"p{number}_{key}")  # noqa: E731
    w: List[Tuple[str, Any]] = []

    def add(key, comp):
        w.append((key, comp))
        return comp

    def slider(key, label, lo, hi, step):
        return add(key, gr.Slider(label=label, minimum=lo, maximum=hi, step=step, value=d[key], elem_id=eid(key)))

    with gr.Row():
        add("enabled", gr.Checkbox(label=f"Pass {number} on", value=d["enabled"], elem_id=eid("enabled")))
        add("detector", gr.Dropdown(label="Detector", choices=detector_names(), value=d["detector"],
                                    allow_custom_value=True, elem_id=eid("detector")))
        add("region_kind", gr.Dropdown(label="Regions are", choices=["auto", "face", "hand", "person", "other"],
                                       value=d["region_kind"], elem_id=eid("region_kind")))
    add("prompt", gr.Textbox(label="Prompt (empty: main prompt; [PROMPT], [SEP], [SKIP])", lines=2,
                             value=d["prompt"], elem_id=eid("prompt")))
    add("negative_prompt", gr.Textbox(label="Negative prompt (empty: main)", lines=1,
                                      value=d["negative_prompt"], elem_id=eid("negative_prompt")))
    with gr.Accordion("Detection", open=False):
        with gr.Row():
            slider("confidence", "Confidence", 0.0, 1.0, 0.01)
            add("classes", gr.Textbox(label="Classes (multi-class YOLO, comma-separated)", value=d["classes"],
                                      elem_id=eid("classes")))
        with gr.Row():
            slider("top_k", "Keep the k best (0: all)", 0, 20, 1)
            add("top_k_by", gr.Radio(label="Best by", choices=["area", "confidence"], value=d["top_k_by"],
                                     elem_id=eid("top_k_by")))
            add("order", gr.Dropdown(label="Region order", choices=["none", "left_to_right", "area", "confidence"],
                                     value=d["order"], elem_id=eid("order")))
        with gr.Row():
            slider("min_ratio", "Min area ratio", 0.0, 1.0, 0.001)
            slider("max_ratio", "Max area ratio", 0.0, 1.0, 0.001)
    with gr.Accordion("Mask", open=False):
        with gr.Row():
            slider("dilate_erode", "Dilate (+) / erode (-)", -128, 128, 1)
            slider("mask_blur", "Mask blur", 0, 64, 1)
        with gr.Row():
            slider("x_offset", "X offset", -200, 200, 1)
            slider("y_offset", "Y offset", -200, 200, 1)
        add("merge", gr.Radio(label="Masks", choices=["none", "merge", "merge_invert"], value=d["merge"],
                              elem_id=eid("merge")))
    with gr.Accordion("Inpaint", open=False):
        with gr.Row():
            slider("denoise", "Denoising strength", 0.0, 1.0, 0.01)
            add("shot_swap", gr.Checkbox(label="Shot-token swap (face: <cu_trg>, hand: none)", value=d["shot_swap"],
                                         elem_id=eid("shot_swap")))
        with gr.Row():
            add("inpaint_only_masked", gr.Checkbox(label="Only masked", value=d["inpaint_only_masked"],
                                                   elem_id=eid("inpaint_only_masked")))
            slider("padding", "Padding", 0, 256, 4)
        with gr.Row():
            slider("inpaint_width", "Inpaint width", 64, 2048, 8)
            slider("inpaint_height", "Inpaint height", 64, 2048, 8)
            add("match_box", gr.Checkbox(label="Match the box's aspect ratio", value=d["match_box"],
                                         elem_id=eid("match_box")))
        for key, make in (
                ("steps", lambda: slider("steps", "Steps", 1, 150, 1)),
                ("cfg_scale", lambda: slider("cfg_scale", "CFG scale", 0.0, 30.0, 0.5)),
                ("sampler", lambda: add("sampler", gr.Dropdown(
                    label="Sampler", choices=samplers, value=d["sampler"], elem_id=eid("sampler")))),
                ("clip_skip", lambda: slider("clip_skip", "CLIP skip", 1, 12, 1))):
            with gr.Row():
                add(f"use_{key}", gr.Checkbox(label=OPTIONAL[key][0], value=d[f"use_{key}"],
                                              elem_id=eid(f"use_{key}"), scale=1))
                with gr.Column(scale=3):
                    make()
    if sorted(k for k, _ in w) != sorted(form_keys()):  # a PassArgs field without a widget would never be set
        raise RuntimeError(f"{SCRIPT_TITLE}: the pass widgets and the pass fields differ.")
    return w


def _infotext_passes(params: dict) -> Optional[Dict[int, PassArgs]]:
    """Pass number → settings from pasted infotext params; None when the infotext has no detailer entry."""
    found = from_infotext(params)
    return dict(found) if found else None


def build_ui(script, is_img2img: bool) -> list:
    """The accordion; returns the script's argument components `[enabled, state 1..N, detail_only]` and sets the
    script's `infotext_fields` so that pasting an infotext restores every widget and every pass dict."""
    import gradio as gr
    from modules import sd_samplers
    from modules.ui_components import InputAccordion

    samplers = [s.name for s in sd_samplers.all_samplers]
    n = max_passes()
    states, fields = [], []
    with InputAccordion(False, label=SCRIPT_TITLE, elem_id=script.elem_id("enabled")) as enabled:
        detail_only = gr.Checkbox(
            label="Detail only: skip img2img and detail the init image as it is", value=False,
            visible=is_img2img, elem_id=script.elem_id("detail_only"))
        with gr.Tabs():
            for number in range(1, n + 1):
                with gr.Tab(f"Pass {number}"):
                    widgets = _pass_widgets(script, number, samplers)
                keys = [k for k, _ in widgets]
                comps = [c for _, c in widgets]
                state = gr.State(value=form_to_pass(keys, [c.value for c in comps]))
                update = lambda *values, keys=keys: form_to_pass(keys, values)  # noqa: E731
                for comp in comps:
                    comp.change(fn=update, inputs=comps, outputs=[state], queue=False, show_progress=False)
                states.append(state)
                for key, comp in widgets:
                    fields.append((comp, _paste_widget(number, key)))
                fields.append((state, _paste_state(number, keys)))
    fields.append((enabled, lambda params: _infotext_passes(params) is not None))
    fields.append((detail_only, lambda params: str(params.get(DETAIL_ONLY_KEY, "False")) == "True"))
    script.infotext_fields = fields
    return [enabled, *states, detail_only]


def _pasted_pass(params: dict, number: int) -> Optional[PassArgs]:
    passes = _infotext_passes(params)
    if passes is None:
        return None  # not a detailer infotext: leave the widgets as they are (the accordion closes)
    return passes.get(number, PassArgs(enabled=False))


def _paste_widget(number: int, key: str) -> Callable[[dict], Any]:
    def value(params: dict):
        p = _pasted_pass(params, number)
        return None if p is None else pass_to_form(p)[key]
    return value


def _paste_state(number: int, keys: Sequence[str]) -> Callable[[dict], Any]:
    def value(params: dict):
        p = _pasted_pass(params, number)
        if p is None:
            return None
        w = pass_to_form(p)
        return form_to_pass(keys, [w[k] for k in keys])
    return value


# -- the generation hooks -----------------------------------------------------------------------------------------
def _problem(p, message: str) -> None:
    """One sentence in the console and in the generation's comments (shown under the image, in the API's info)."""
    print(f"[storyboard] {message}", flush=True)
    p.comment(message)


def process(p, script_args: Sequence[Any]) -> None:
    """`Script.process`: validate, record the settings in the infotext, set up detail-only mode."""
    if getattr(p, "_storyboard_inner", False):
        return
    try:
        run = parse_script_args(script_args, max_passes())
        if not run.active:
            return
        check_for_host(run.passes)
    except DetailerArgsError as e:
        _problem(p, f"{e} The detailer did not run.")
        return
    is_img2img = bool(getattr(p, "init_images", None))
    p._storyboard_detailer = run
    p.extra_generation_params.update(to_infotext(run.passes))
    if run.detail_only and is_img2img:
        p.extra_generation_params[DETAIL_ONLY_KEY] = True
        _skip_base_pass(p)


def _skip_base_pass(p) -> None:
    """Detail-only mode: the img2img runs, but its two costly steps do nothing.

    `init` (resize, mask, VAE encode) is replaced by a no-op and `sample` returns the init images as already
    decoded pixels (A1111 skips the VAE decode for a result marked `already_decoded`), so no UNet step and no VAE
    pass run. `postprocess_image` then swaps in the untouched init image itself (the float round trip through
    the host's uint8 conversion is not byte-exact) before detailing it. Everything else of the host's loop — seeds,
    prompts, extra networks, saving, infotext, the API response — stays the host's own.
    """
    import numpy as np
    import torch

    images = [img.convert("RGB") for img in p.init_images]
    p._storyboard_detail_only = images
    p.width, p.height = images[0].size   # the infotext's Size is the image's

    def init(*args, **kwargs):
        p.sampler = None

    def sample(*args, seeds=(), **kwargs):
        size = images[0].size
        return _DecodedBatch(
            torch.from_numpy(np.asarray(images[i % len(images)].resize(size), dtype=np.float32)).permute(2, 0, 1)
            / 127.5 - 1.0 for i in range(len(seeds)))

    p.init = init
    p.sample = sample


class _DecodedBatch(list):
    """Pixel tensors in [-1, 1], one per batch image; the host stacks them and skips its VAE decode."""
    already_decoded = True


def postprocess_image(p, pp) -> None:
    """`Script.postprocess_image`: detail this image (every image of a batch comes through here)."""
    run: Optional[DetailerRun] = getattr(p, "_storyboard_detailer", None)
    if run is None or getattr(p, "_storyboard_inner", False):
        return
    from modules import paths, shared

    i = p.batch_index
    idx = p.iteration * p.batch_size + i
    originals = getattr(p, "_storyboard_detail_only", None)
    if originals:
        pp.image = originals[i % len(originals)]
    before = pp.image

    seed, prompt = p.all_seeds[idx], p.all_prompts[idx]
    if shared.opts.data.get(OPT_SAVE_BEFORE, False) and p.save_samples():
        _save(p, before, idx, "-before-detailer")

    state = shared.state

    def on_pass(pass_index: int, jobs: List[RegionJob]) -> None:
        state.job_count += len(jobs)  # each region's img2img advances job_no by one

    def on_region(done: int, planned: int) -> None:
        state.textinfo = f"{SCRIPT_TITLE}: region {done} of {planned}"

    params_txt = os.path.join(paths.data_path, "params.txt")
    saved_params = _read(params_txt)
    try:
        result = run_detailer(
            before, run.passes, registry_detect(registry()), _inpainter(p, idx),
            main_prompt=prompt, main_negative=p.all_negative_prompts[idx], seed=seed,
            should_stop=lambda: bool(state.interrupted or state.skipped), on_pass=on_pass, on_region=on_region)
    except DetectorError as e:
        _problem(p, f"{SCRIPT_TITLE}: {e}")
        return
    finally:
        if saved_params is not None:  # each inner img2img rewrote params.txt with its own infotext
            atomic_write_text(params_txt, saved_params)
    pp.image = result.image
    if shared.opts.data.get(OPT_SAVE_MASKS, False) and p.save_samples():
        for k, preview in enumerate(result.previews):
            _save(p, preview, idx, f"-detailer-mask-{k + 1}")


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf8") as f:
            return f.read()
    except OSError:
        return None


def _save(p, image: Image.Image, idx: int, suffix: str) -> None:
    from modules import images, processing, shared

    info = processing.create_infotext(p, p.all_prompts, p.all_seeds, p.all_subseeds, None, p.iteration,
                                      p.batch_index)
    images.save_image(image, p.outpath_samples, "", p.all_seeds[idx], p.all_prompts[idx],
                      shared.opts.samples_format, info=info, p=p, suffix=suffix)


# -- one region through the host's img2img -------------------------------------------------------------------------
CLIP_SKIP_OPTION = "CLIP_stop_at_last_layers"
_MISSING = object()


def _inpainter(p, idx: int) -> Callable[[RegionJob, Image.Image], Image.Image]:
    import torch
    from modules import devices, processing, sd_samplers, shared

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
            setup_conds = q.setup_conds

            def setup_conds_with_vectors():
                # After the inner pass activated its LoRAs (which re-register bundled embeddings by name), so
                # that <cu_trg> means the trained vectors when the region prompt is encoded.
                register_vectors(q)
                return setup_conds()
            q.setup_conds = setup_conds_with_vectors
        previous = shared.opts.data.get(CLIP_SKIP_OPTION, _MISSING)
        if job.clip_skip:
            q.override_settings = {CLIP_SKIP_OPTION: job.clip_skip}
        try:
            # The host's img2img samples its VAE latent with torch's global RNG, unseeded, so a region would depend
            # on whatever ran before it; seeding it from the region's seed (in a fork, leaving the host's stream
            # as it was) makes the region reproducible from the infotext.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(job.seed)
                processed = processing.process_images(q)
        except devices.NansException as e:
            _problem(p, f"{SCRIPT_TITLE}: region {job.region_index + 1} of pass {job.pass_index + 1} was left as "
                        f"it was because the model produced NaNs ({str(e).splitlines()[0]}).")
            return image
        finally:
            # The host restores an override only for keys already in opts.data; put clip skip back ourselves.
            if job.clip_skip:
                if previous is _MISSING:
                    shared.opts.data.pop(CLIP_SKIP_OPTION, None)
                else:
                    shared.opts.data[CLIP_SKIP_OPTION] = previous
            q.close()
        if not processed.images:
            return image  # interrupted before the region was drawn
        out = processed.images[0].convert(image.mode)
        if out.size != image.size:
            # Whole-image mode works at the size rounded to 8: scale back and keep unmasked pixels exactly.
            out = Image.composite(out.resize(image.size, Image.LANCZOS), image, job.paste_mask())
        return out

    return inpaint

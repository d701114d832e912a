"""Every change this extension makes to the host's objects, each with its undo, in one place.

Checked against AUTOMATIC1111 v1.10.1 (the module and function each one touches is named in its docstring). A new
host version is checked here first: nothing else in the extension reaches into the host's internals.
"""
import contextlib
import functools
from collections.abc import Callable, Iterator

import numpy as np
import torch
from fastapi import Depends
from fastapi.dependencies.utils import get_parameterless_sub_dependant
from fastapi.routing import APIRoute
from modules import processing, safe, sd_hijack, shared
from modules.textual_inversion.textual_inversion import Embedding

Undo = Callable[[], None]
CLIP_SKIP_OPTION = "CLIP_stop_at_last_layers"
_MISSING = object()


# -- loading ------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def trusted_unpickle() -> Iterator[None]:
    """`modules/safe.py` replaces `torch.load` with a restricted unpickler that refuses ultralytics pickles (and
    returns None rather than raising). For the YOLO `.pt` files the user placed (or our own download) the host's
    original loader, `safe.unsafe_torch_load`, is put back for exactly that load."""
    previous = torch.load
    torch.load = safe.unsafe_torch_load
    try:
        yield
    finally:
        torch.load = previous


# -- conditioning caches ------------------------------------------------------------------------------------------
def reset_condition_caches() -> None:
    """`modules/processing.py` caches conditioning on the class by prompt text, not by the embedding vectors behind
    it: drop it after vectors change. (Nothing to undo: the host refills it on the next generation.)"""
    for cls in (processing.StableDiffusionProcessing, processing.StableDiffusionProcessingTxt2Img):
        for attr in ("cached_c", "cached_uc", "cached_hr_c", "cached_hr_uc"):
            if hasattr(cls, attr):
                setattr(cls, attr, [None, None])


# -- token vectors in the host's textual-inversion database -------------------------------------------------------
def register_token(stem: str, vec: torch.Tensor):
    """Make `stem` (cu_trg…) mean `vec` in `modules/textual_inversion/textual_inversion.py`'s database, which the
    host's prompt parser matches by token ids; returns the registered Embedding. Undo: `unregister_token`."""
    emb = Embedding(vec, stem)
    emb.vectors, emb.shape = vec.shape[0], vec.shape[-1]
    sd_hijack.model_hijack.embedding_db.register_embedding_by_name(emb, shared.sd_model, stem)
    return emb


def unregister_token(stem: str, emb=None) -> None:
    """Drop `stem` from the database if it is still `emb` (or, without `emb`, any vectors not loaded from a file),
    so embedding files of that name that the host loads are left alone."""
    db = sd_hijack.model_hijack.embedding_db
    current = db.word_embeddings.get(stem)
    if current is not None and (current is emb if emb is not None else current.filename is None):
        db.register_embedding_by_name(None, shared.sd_model, stem)


# -- training on the loaded model ---------------------------------------------------------------------------------
def clear_host_loras() -> None:
    """Deactivate whatever LoRAs the last prompt merged (`extensions-builtin/Lora/networks.py`), so training sees
    the bare checkpoint. The host's patched forward restores each layer's backed-up weights on its next call; the
    next prompt with a <lora:…> merges them again, so there is nothing to undo."""
    with contextlib.suppress(ImportError):   # the built-in Lora extension; absent when the user disabled it
        import networks
        networks.load_networks([])
        with torch.no_grad():
            for root in (shared.sd_model.model, shared.sd_model.cond_stage_model):
                for mod in root.modules():
                    if getattr(mod, "network_weights_backup", None) is not None or \
                            getattr(mod, "network_current_names", ()):
                        networks.network_restore_weights_from_backup(mod)
                        mod.network_current_names = ()


def set_clip_skip(value: int) -> Undo:
    """`shared.opts.CLIP_stop_at_last_layers`, which `sd_hijack_clip` reads on every text encode."""
    undo = _restorer(CLIP_SKIP_OPTION)
    shared.opts.data[CLIP_SKIP_OPTION] = value
    return undo


def _restorer(key: str) -> Undo:
    """Puts `shared.opts.data[key]` back as it is now (absent stays absent)."""
    previous = shared.opts.data.get(key, _MISSING)

    def undo() -> None:
        if previous is _MISSING:
            shared.opts.data.pop(key, None)
        else:
            shared.opts.data[key] = previous
    return undo


def plain_attention() -> Undo:
    """`sd_hijack.undo_optimizations()`: xformers and the host's sliced attentions have had broken backward passes,
    so training runs the model's own attention unless the user's `training_xattention_optimizations` says otherwise."""
    if getattr(shared.opts, "training_xattention_optimizations", False):
        return lambda: None
    sd_hijack.undo_optimizations()
    return sd_hijack.apply_optimizations


def freeze(module: torch.nn.Module) -> Undo:
    """requires_grad off on every weight the host left trainable; only our tokens and LoRA layers learn."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    return lambda: [p.requires_grad_(True) for p in trainable]


def checkpoint_blocks(unet: torch.nn.Module) -> Undo:
    """Non-reentrant activation checkpointing on ldm's `BasicTransformerBlock`s and `ResBlock`s (the host's own
    `sd_hijack_checkpoint` is re-entrant, which gives LoRA weights inside a block no gradient when the block's inputs
    do not require grad). Instance attributes shadow the class's forward; the undo deletes them."""
    patched = []
    for mod in unet.modules():
        if type(mod).__name__ in ("BasicTransformerBlock", "ResBlock"):
            mod.forward = functools.partial(_checkpointed, mod.forward)
            patched.append(mod)

    def undo() -> None:
        for mod in patched:
            with contextlib.suppress(AttributeError):
                del mod.forward
    return undo


def _checkpointed(fn, *args, **kwargs):
    return torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False, **kwargs)


# -- the detailer's passes through the host's processing ----------------------------------------------------------
class DecodedBatch(list):
    """Pixel tensors in [-1, 1], one per batch image; `processing.process_images_inner` stacks them and skips its VAE
    decode for a result marked `already_decoded`."""
    already_decoded = True


def skip_base_pass(p, images: list) -> None:
    """Detail-only mode: `p.init` (resize, mask, VAE encode) becomes a no-op and `p.sample` returns the init images as
    already decoded pixels, so no UNet step and no VAE pass run; seeds, prompts, extra networks, saving, infotext and
    the API response stay the host's own. Lives on this one processing object, so it ends with it."""
    def init(*args, **kwargs):
        p.sampler = None

    def sample(*args, seeds=(), **kwargs):
        size = images[0].size
        return DecodedBatch(
            torch.from_numpy(np.asarray(images[i % len(images)].resize(size), dtype=np.float32)).permute(2, 0, 1)
            / 127.5 - 1.0 for i in range(len(seeds)))

    p.init = init
    p.sample = sample


def before_conditioning(q, hook: Callable[[], None]) -> None:
    """Run `hook` inside `q.setup_conds()`, after the host activated the pass's extra networks (which re-register
    bundled embeddings by name) and before the prompts are encoded. Lives on this one processing object."""
    setup_conds = q.setup_conds

    def setup_conds_after_hook():
        hook()
        return setup_conds()
    q.setup_conds = setup_conds_after_hook


@contextlib.contextmanager
def clip_skip_for(q, value) -> Iterator[None]:
    """A region's own CLIP skip through `override_settings`. The host restores an override only for keys already in
    `opts.data` (`processing.process_images`), so the value is put back here whatever the host does."""
    undo = _restorer(CLIP_SKIP_OPTION)
    if value:
        q.override_settings = {CLIP_SKIP_OPTION: value}
    try:
        yield
    finally:
        if value:
            undo()


# -- the host's API routes ----------------------------------------------------------------------------------------
def add_route_check(app, path: str, check) -> None:
    """Add a FastAPI dependency to one of the host's own routes (`modules/api/api.py`'s txt2img/img2img), after its
    --api-auth dependency. Script hooks cannot refuse a request (the host catches and prints what they raise), a
    dependency can. The route handler holds the same `dependant` object, so the check takes effect at once; it
    stays for the life of the app (once per route)."""
    for route in app.routes:
        if not isinstance(route, APIRoute) or route.path != path or getattr(route, "_storyboard_checked", False):
            continue
        dep = Depends(check)
        route.dependencies.append(dep)
        route.dependant.dependencies.append(get_parameterless_sub_dependant(depends=dep, path=route.path_format))
        route._storyboard_checked = True

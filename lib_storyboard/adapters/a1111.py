"""Model adapter over the checkpoint A1111 has loaded (`shared.sd_model`, an ldm LatentDiffusion): no second copy.

Host modules are imported inside functions: this file is only used from the host's process.
Everything changed on the host's model for training is put back in `training()`'s `finally`.
"""
from __future__ import annotations

import contextlib
import functools

import torch

from ..training.adapter import ModelAdapter, UnsupportedModel


def is_forge() -> bool:
    import importlib.util
    return importlib.util.find_spec("modules_forge") is not None


class A1111Adapter(ModelAdapter):
    def __init__(self, sd_model=None, clip_skip: int = 1):
        from modules import devices, shared

        self.m = sd_model if sd_model is not None else shared.sd_model
        self.device = devices.device
        self.clip_skip = clip_skip
        self.vae_scale_factor = 8
        self.parameterization = getattr(self.m, "parameterization", "eps")
        info = getattr(self.m, "sd_checkpoint_info", None)
        self.model_name = getattr(info, "model_name", "") or ""
        self.model_hash = getattr(info, "shorthash", "") or ""
        self._embeddings: dict = {}
        self.hidden_size = 768

    # -- checks -------------------------------------------------------------------------------------------------
    def check_trainable(self) -> None:
        from modules import shared

        if is_forge():
            raise UnsupportedModel("Training on Forge's loaded model is not supported (its weights are inference "
                                   "tensors); use the standalone trainer or A1111.")
        m = self.m
        if m is None or not hasattr(m, "cond_stage_model"):
            raise UnsupportedModel("No SD1.5 checkpoint is loaded; load one in the checkpoint dropdown first.")
        kind = ("SDXL" if getattr(m, "is_sdxl", False) else "SD3" if getattr(m, "is_sd3", False)
                else "SD2" if getattr(m, "is_sd2", False) else None)
        if kind or not getattr(m, "is_sd1", True) or not hasattr(m.cond_stage_model, "wrapped") or \
                not hasattr(getattr(m.cond_stage_model, "wrapped", None), "transformer"):
            raise UnsupportedModel(f"The loaded checkpoint is {kind or 'not SD1.x'}; storyboard training needs an "
                                   "SD1.5 checkpoint, so select one in the checkpoint dropdown.")
        if getattr(shared.cmd_opts, "lowvram", False):
            raise UnsupportedModel("Training is not possible with --lowvram; restart the WebUI without it "
                                   "(--medvram works, more slowly).")
        self.hidden_size = int(self.m.cond_stage_model.encode_embedding_init_text(",", 1).shape[-1])

    # No autocast of our own: the shared one enters the decided dtype. (The host's devices.autocast() is fp16 on
    # CUDA whatever was decided; the one its apply_model enters inside ours inherits our dtype.)
    @property
    def weight_dtype(self) -> torch.dtype:
        return next(self.m.model.diffusion_model.parameters()).dtype

    @property
    def tokenizer(self):
        return self.m.cond_stage_model.wrapped.tokenizer

    # -- training mode ------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def training(self, gradient_checkpointing: bool):
        from modules import sd_hijack, shared

        m = self.m
        undo = []
        try:
            _clear_host_loras()
            old_skip = shared.opts.CLIP_stop_at_last_layers
            shared.opts.CLIP_stop_at_last_layers = self.clip_skip
            undo.append(lambda: setattr(shared.opts, "CLIP_stop_at_last_layers", old_skip))
            if not getattr(shared.opts, "training_xattention_optimizations", False):
                sd_hijack.undo_optimizations()   # xformers & co. have had broken backward passes
                undo.append(sd_hijack.apply_optimizations)
            grads = [p for p in m.parameters() if p.requires_grad]
            for p in grads:
                p.requires_grad_(False)
            undo.append(lambda: [p.requires_grad_(True) for p in grads])
            if gradient_checkpointing:
                undo.append(_checkpoint_blocks(m.model.diffusion_model))
            yield
        finally:
            for fn in reversed(undo):
                fn()
            self._unregister_embeddings()

    def after_save(self) -> None:
        """Make the host see new files now: embeddings reloaded, LoRA list refreshed, stale conditioning dropped."""
        from modules import processing, sd_hijack

        sd_hijack.model_hijack.embedding_db.load_textual_inversion_embeddings(force_reload=True)
        reset_condition_caches(processing)
        with contextlib.suppress(Exception):
            import networks
            networks.list_available_networks()

    # -- the pieces the trainer calls ---------------------------------------------------------------------------
    def alphas_cumprod(self) -> torch.Tensor:
        ab = getattr(self.m, "alphas_cumprod_original", None)
        if ab is None:
            ab = self.m.alphas_cumprod
        return ab.detach().to(self.device, torch.float32)

    @torch.no_grad()
    def encode_images(self, pixels):
        from modules import devices
        with devices.autocast():
            dist = self.m.encode_first_stage(pixels.to(devices.device, devices.dtype_vae))
        s = float(self.m.scale_factor)
        return (dist.mean.float() * s).cpu(), (dist.std.float() * s).cpu()

    @torch.no_grad()
    def decode_latents(self, latents):
        from modules import devices
        with devices.autocast():
            x = self.m.decode_first_stage(latents.to(devices.device, devices.dtype_vae))
        return ((x.float() + 1) / 2).clamp(0, 1).cpu()

    def token_init(self, words: str, n: int) -> torch.Tensor:
        with torch.no_grad():
            e = self.m.cond_stage_model.encode_embedding_init_text(words, n).float().cpu()
            if e.shape[0] == 0:
                e = self.m.cond_stage_model.encode_embedding_init_text(",", 1).float().cpu()
        return torch.stack([e[i % e.shape[0]] for i in range(n)]).clone()

    def encode_text(self, captions, tokens):
        # The host's own text path splices registered embeddings in (and gradients flow into `vec`), so training
        # sees exactly what txt2img will: same tokenisation, emphasis, clip skip.
        from modules import sd_hijack
        from modules.textual_inversion.textual_inversion import Embedding

        db = sd_hijack.model_hijack.embedding_db
        for stem, vec in tokens.items():
            emb = self._embeddings.get(stem)
            if emb is None or db.word_embeddings.get(stem) is not emb:
                emb = Embedding(vec, stem)
                emb.vectors, emb.shape = vec.shape[0], vec.shape[-1]
                db.register_embedding_by_name(emb, self.m, stem)
                self._embeddings[stem] = emb
            emb.vec = vec
        return self.m.cond_stage_model(captions)

    def _unregister_embeddings(self):
        from modules import sd_hijack
        db = sd_hijack.model_hijack.embedding_db
        for stem, emb in self._embeddings.items():
            if db.word_embeddings.get(stem) is emb:
                db.register_embedding_by_name(None, self.m, stem)
        self._embeddings.clear()

    def predict(self, x_t, t, cond):
        return self.m.apply_model(x_t, t, cond)

    def lora_targets(self, text_encoder: bool):
        from ..formats.kohya_names import compvis_to_diffusers_unet, kohya_te_name, kohya_unet_name

        unet = self.m.model.diffusion_model
        nrb = unet.num_res_blocks
        layers_per_block = nrb[0] if isinstance(nrb, (list, tuple)) else int(nrb)
        out = []
        for name, mod in unet.named_modules():
            if type(mod).__name__ != "SpatialTransformer":
                continue
            for sub, leaf in mod.named_modules():
                if sub and _lora_able(leaf):
                    path = f"{name}.{sub}"
                    out.append((kohya_unet_name(compvis_to_diffusers_unet(path, layers_per_block), layers_per_block),
                                leaf))
        if text_encoder:
            te = self.m.cond_stage_model.wrapped.transformer
            out += [(kohya_te_name(n), mm) for n, mm in te.named_modules()
                    if ".encoder.layers." in n and isinstance(mm, torch.nn.Linear)]
        return out


def _lora_able(m) -> bool:
    return isinstance(m, torch.nn.Linear) or (isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1))


def _clear_host_loras() -> None:
    """Deactivate whatever LoRAs the last prompt merged, so we train on the bare checkpoint; the host's patched
    forward restores each layer's backed-up weights on its next call."""
    with contextlib.suppress(ImportError):
        import networks
        networks.load_networks([])
        with torch.no_grad():
            for mod in _host_lora_modules():
                networks.network_restore_weights_from_backup(mod)
                mod.network_current_names = ()


def _host_lora_modules():
    from modules import shared
    m = shared.sd_model
    for root in (m.model, m.cond_stage_model):
        for mod in root.modules():
            if getattr(mod, "network_weights_backup", None) is not None or getattr(mod, "network_current_names", ()):
                yield mod


def _checkpoint_blocks(unet):
    """Non-reentrant activation checkpointing on the ldm blocks (the host's own patch is re-entrant, which gives
    LoRA weights inside a block no gradient when the block's inputs do not require grad)."""
    patched = []
    for mod in unet.modules():
        if type(mod).__name__ in ("BasicTransformerBlock", "ResBlock"):
            orig = mod.forward
            mod.forward = functools.partial(_ckpt_call, orig)
            patched.append(mod)

    def undo():
        for mod in patched:
            with contextlib.suppress(AttributeError):
                del mod.forward
    return undo


def _ckpt_call(fn, *args, **kwargs):
    return torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False, **kwargs)


def reset_condition_caches(processing) -> None:
    """The host caches conditioning by prompt text, not embedding contents: drop it after vectors change."""
    for cls in (processing.StableDiffusionProcessing, processing.StableDiffusionProcessingTxt2Img):
        for attr in ("cached_c", "cached_uc", "cached_hr_c", "cached_hr_uc"):
            if hasattr(cls, attr):
                setattr(cls, attr, [None, None])

"""The trainer's model adapter over the checkpoint A1111 has loaded (`shared.sd_model`, an ldm LatentDiffusion): no
second copy. Every change `training()` makes to the host is one of `patches`' and is undone on the way out."""
import contextlib

import torch
from modules import devices, shared

from ..formats.kohya_names import compvis_to_diffusers_unet, kohya_te_name, kohya_unet_name
from ..training.adapter import ModelAdapter, UnsupportedModel
from . import patches
from .capabilities import embedding_db, training_unavailable, untrainable_checkpoint


class A1111Adapter(ModelAdapter):
    def __init__(self, clip_skip: int = 1):
        self.m = shared.sd_model
        self.device = devices.device
        self.clip_skip = clip_skip
        self.vae_scale_factor = 8
        self.parameterization = getattr(self.m, "parameterization", "eps")
        info = getattr(self.m, "sd_checkpoint_info", None)
        self.model_name = getattr(info, "model_name", "") or ""
        self.model_hash = getattr(info, "shorthash", "") or ""
        self._embeddings: dict = {}
        self.hidden_size = 768

    def check_trainable(self) -> None:
        reason = training_unavailable() or untrainable_checkpoint(self.m)
        if reason:
            raise UnsupportedModel(reason)
        self.hidden_size = int(self.m.cond_stage_model.encode_embedding_init_text(",", 1).shape[-1])

    # No autocast of our own: the shared one enters the decided dtype. (The host's devices.autocast() is fp16 on
    # CUDA whatever was decided; the one its apply_model enters inside ours inherits our dtype.)
    @property
    def weight_dtype(self) -> torch.dtype:
        return next(self.m.model.diffusion_model.parameters()).dtype

    @property
    def tokenizer(self):
        return self.m.cond_stage_model.wrapped.tokenizer

    @contextlib.contextmanager
    def training(self, gradient_checkpointing: bool):
        undo = []
        try:
            patches.clear_host_loras()
            undo.append(patches.set_clip_skip(self.clip_skip))
            undo.append(patches.plain_attention())
            undo.append(patches.freeze(self.m))
            if gradient_checkpointing:
                undo.append(patches.checkpoint_blocks(self.m.model.diffusion_model))
            yield
        finally:
            for fn in reversed(undo):
                fn()
            for stem, emb in self._embeddings.items():
                patches.unregister_token(stem, emb)
            self._embeddings.clear()

    def after_save(self) -> None:
        """Make the host see new files now: embeddings reloaded, LoRA list refreshed, stale conditioning dropped."""
        embedding_db().load_textual_inversion_embeddings(force_reload=True)
        patches.reset_condition_caches()
        with contextlib.suppress(ImportError):
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
        with devices.autocast():
            dist = self.m.encode_first_stage(pixels.to(devices.device, devices.dtype_vae))
        s = float(self.m.scale_factor)
        return (dist.mean.float() * s).cpu(), (dist.std.float() * s).cpu()

    @torch.no_grad()
    def decode_latents(self, latents):
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
        db = embedding_db()
        for stem, vec in tokens.items():
            emb = self._embeddings.get(stem)
            if emb is None or db.word_embeddings.get(stem) is not emb:
                emb = self._embeddings[stem] = patches.register_token(stem, vec)
            emb.vec = vec
        return self.m.cond_stage_model(captions)

    def predict(self, x_t, t, cond):
        return self.m.apply_model(x_t, t, cond)

    def lora_targets(self, text_encoder: bool):
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

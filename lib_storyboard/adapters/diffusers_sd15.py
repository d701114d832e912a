"""Model adapter over diffusers SD1.5 components: the standalone CLI, the demo and the tests train through it."""
from __future__ import annotations

import contextlib
import os

import torch

from ..training.adapter import ModelAdapter, UnsupportedModel
from .text_splice import apply_splices, layout


class DiffusersSD15(ModelAdapter):
    def __init__(self, unet, vae, text_encoder, tokenizer, scheduler, *, device: str | torch.device = "cpu",
                 weight_dtype: torch.dtype = torch.float32, clip_skip: int = 1, model_name: str = "",
                 model_hash: str = ""):
        self.unet, self.vae, self.text_encoder, self.tokenizer, self.scheduler = unet, vae, text_encoder, tokenizer, scheduler
        self.device = torch.device(device)
        self.weight_dtype = weight_dtype
        self.clip_skip = clip_skip
        self.hidden_size = text_encoder.config.hidden_size
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.parameterization = "v" if scheduler.config.get("prediction_type") == "v_prediction" else "eps"
        self.model_name, self.model_hash = model_name, model_hash
        for m in (unet, vae, text_encoder):
            m.requires_grad_(False).eval().to(self.device, dtype=weight_dtype)
        self._splices = None
        self._vectors = None
        self._hook = self._token_embedding().register_forward_hook(self._splice_hook)

    @classmethod
    def from_components(cls, c, **kw) -> "DiffusersSD15":
        return cls(c.unet, c.vae, c.text_encoder, c.tokenizer, c.scheduler, **kw)

    # -- checks and modes ------------------------------------------------------------------------------------
    def check_trainable(self) -> None:
        cross = self.unet.config.cross_attention_dim
        if self.unet.config.get("addition_embed_type") or cross not in (self.hidden_size,):
            raise UnsupportedModel("This is not an SD1.x model (its UNet does not match a CLIP-L-style text encoder); "
                                   "only SD1.5-family checkpoints can be trained.")

    @contextlib.contextmanager
    def training(self, gradient_checkpointing: bool):
        was = self.unet.is_gradient_checkpointing
        if gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
            self.unet.train()   # diffusers only checkpoints in training mode; SD's UNet has no dropout
        try:
            yield
        finally:
            if not was:
                self.unet.disable_gradient_checkpointing()
            self.unet.eval()

    # -- the pieces the trainer calls ---------------------------------------------------------------------------
    def alphas_cumprod(self) -> torch.Tensor:
        return self.scheduler.alphas_cumprod.to(self.device, torch.float32)

    @torch.no_grad()
    def encode_images(self, pixels):
        dist = self.vae.encode(pixels.to(self.device, self.weight_dtype)).latent_dist
        s = self.vae.config.scaling_factor
        return (dist.mean.float() * s).cpu(), (dist.std.float() * s).cpu()

    @torch.no_grad()
    def decode_latents(self, latents):
        s = self.vae.config.scaling_factor
        x = self.vae.decode(latents.to(self.device, self.weight_dtype) / s).sample
        return ((x.float() + 1) / 2).clamp(0, 1).cpu()

    def _token_embedding(self):
        return self.text_encoder.text_model.embeddings.token_embedding

    def token_init(self, words: str, n: int) -> torch.Tensor:
        ids = self.tokenizer(words, add_special_tokens=False).input_ids or [self.tokenizer.eos_token_id]
        ids = [ids[i % len(ids)] for i in range(n)]
        with torch.no_grad():
            return self._token_embedding().weight[torch.tensor(ids, device=self.device)].float().cpu().clone()

    def _splice_hook(self, module, args, output):
        if self._splices is None:
            return output
        return apply_splices(output, self._splices, self._vectors)

    def encode_text(self, captions, tokens):
        rows, splices = layout(self.tokenizer, captions, {k: v.shape[0] for k, v in tokens.items()})
        ids = torch.tensor(rows, device=self.device)
        self._splices, self._vectors = splices, {k: v.to(self.device) for k, v in tokens.items()}
        try:
            if self.clip_skip > 1:
                out = self.text_encoder(ids, output_hidden_states=True)
                h = self.text_encoder.text_model.final_layer_norm(out.hidden_states[-self.clip_skip])
            else:
                h = self.text_encoder(ids)[0]
        finally:
            self._splices = self._vectors = None
        return h

    def predict(self, x_t, t, cond):
        return self.unet(x_t, t, encoder_hidden_states=cond).sample

    def lora_targets(self, text_encoder: bool):
        from ..formats.kohya_names import kohya_te_name, kohya_unet_name

        lpb = self.unet.config.layers_per_block
        out = [(kohya_unet_name(n, lpb), m) for n, m in self.unet.named_modules()
               if ".attentions." in n and _lora_able(m)]
        if text_encoder:
            out += [(kohya_te_name(n), m) for n, m in self.text_encoder.named_modules()
                    if ".encoder.layers." in n and isinstance(m, torch.nn.Linear)]
        return out

    def close(self) -> None:
        self._hook.remove()


def _lora_able(m) -> bool:
    return isinstance(m, torch.nn.Linear) or (isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1))


def load_single_file(path: str, device: str = "cpu", weight_dtype: torch.dtype = torch.float32,
                     config_dir: str | None = None) -> DiffusersSD15:
    """A user's SD1.5 `.safetensors` checkpoint (LDM keys) → adapter, offline, with the shipped SD1.5 configs."""
    from diffusers import StableDiffusionPipeline

    if not path.lower().endswith(".safetensors"):
        raise UnsupportedModel(f"Only .safetensors checkpoints can be loaded ({os.path.basename(path)} is not one).")
    if not os.path.isfile(path):
        raise UnsupportedModel(f"The checkpoint {path} does not exist.")
    config_dir = config_dir or _config_dir_beside(path)
    try:
        pipe = StableDiffusionPipeline.from_single_file(
            path, config=config_dir, local_files_only=True, safety_checker=None, requires_safety_checker=False)
    except Exception as e:  # diffusers raises many types for foreign checkpoints
        raise UnsupportedModel(f"{os.path.basename(path)} could not be loaded as an SD1.5 checkpoint ({e}).") from e
    from ..formats.hashing import short_hash

    ad = DiffusersSD15(pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer, pipe.scheduler, device=device,
                       weight_dtype=weight_dtype, model_name=os.path.splitext(os.path.basename(path))[0],
                       model_hash=short_hash(path))
    ad.check_trainable()
    return ad


def _config_dir_beside(path: str) -> str:
    """A config dir named like the checkpoint (our toy base ships one, without the tokenizer files, which are
    assembled beside its configs in the cache), else the standard SD1.5 configs."""
    import hashlib

    from ..formats.ldm_checkpoint import assembled_config_dir, sd15_config_dir

    cfg = os.path.splitext(path)[0] + ".config"
    if not os.path.isfile(os.path.join(cfg, "model_index.json")):
        return sd15_config_dir()
    if os.path.isfile(os.path.join(cfg, "tokenizer", "merges.txt")):
        return cfg
    tag = hashlib.sha1(os.path.abspath(cfg).encode("utf-8")).hexdigest()[:10]
    return assembled_config_dir(cfg, f"{os.path.basename(cfg)}-{tag}")

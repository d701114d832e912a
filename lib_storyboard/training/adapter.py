"""The model adapter: everything the trainer needs from a model, so one loop serves A1111 and diffusers alike.

An adapter owns the model objects; the trainer owns the trainable tensors (token vectors, LoRA weights) and hands
them to the adapter. Only adapters touch host or diffusers model objects.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


class UnsupportedModel(ValueError):
    """The loaded model or host mode cannot be trained here; the message is one sentence for the user."""


class ModelAdapter:
    device: torch.device
    hidden_size: int            # width of one token vector (768 for SD1.5)
    vae_scale_factor: int       # image pixels per latent pixel (8 for SD1.5)
    parameterization: str       # "eps" or "v"
    weight_dtype: torch.dtype   # dtype of the frozen model's weights (the precision decision depends on it)
    tokenizer: object           # the model's CLIP tokenizer (transformers), for caption token counts
    model_name: str = ""        # checkpoint name recorded in metadata
    model_hash: str = ""        # checkpoint short hash recorded in metadata

    def check_trainable(self) -> None:
        """Raise UnsupportedModel with one sentence when this model/host cannot be trained."""

    @contextlib.contextmanager
    def training(self, gradient_checkpointing: bool) -> Iterator[None]:
        """Put the model into training shape (frozen base, checkpointing) and restore every change afterwards."""
        yield

    def alphas_cumprod(self) -> torch.Tensor:
        """The training noise schedule, fp32 on `device` (for A1111: the original, not an override)."""
        raise NotImplementedError

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixels in [-1, 1] (B, 3, H, W) → scaled latent distribution (mean, std), fp32 on the CPU."""
        raise NotImplementedError

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents → images in [0, 1] (B, 3, H, W), fp32 on the CPU."""
        raise NotImplementedError

    def token_init(self, words: str, n: int) -> torch.Tensor:
        """Input embeddings (n, hidden) of the first n tokens of `words`, cycled when `words` has fewer."""
        raise NotImplementedError

    def encode_text(self, captions: list[str], tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """Captions → cross-attention conditioning, with each token stem's vectors spliced in where its
        name appears (the host's own embedding mechanism or an exact emulation of it)."""
        raise NotImplementedError

    def predict(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The UNet's prediction for noisy latents at timesteps t."""
        raise NotImplementedError

    def lora_targets(self, text_encoder: bool) -> list[tuple[str, torch.nn.Module]]:
        """(kohya layer name, module) for every Linear / 1×1 Conv the LoRA attaches to."""
        raise NotImplementedError

    def autocast(self, dtype: torch.dtype | None):
        """Mixed-precision context for forward passes in the decided dtype (training.precision; a no-op for None).
        Every adapter uses this one: a host's own autocast may pick another dtype than the one decided."""
        if dtype is None or self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=dtype)

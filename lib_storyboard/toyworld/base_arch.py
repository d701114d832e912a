"""The toy base's architecture: SD1.5's classes and wiring (CLIP text encoder, UNet2DConditionModel, AutoencoderKL),
scaled down so a model trained from scratch on toy-world panels ships in the repo.

Kept from SD1.5 on purpose: the VAE downsamples 8x with 4 blocks and 4 latent channels (A1111 assumes latent =
image / 8); the UNet has 4 levels, 3 cross-attention levels and `layers_per_block=2` (A1111's kohya LoRA key
mapping assumes 3 input blocks per level); cross-attention width = the text encoder's hidden size; every channel
count is a multiple of 32 (the LDM code A1111 runs hard-codes GroupNorm(32)); the real CLIP tokenizer and its
49,408-token vocabulary; the scaled-linear noise schedule.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ToyBaseArch:
    unet_channels: tuple = (32, 64, 64, 64)
    vae_channels: tuple = (32, 64, 64, 64)
    vae_layers: int = 1
    text_width: int = 64
    text_layers: int = 4
    text_heads: int = 4
    unet_heads: int = 8                  # diffusers' `attention_head_dim` for SD1 means the number of heads

    def as_dict(self) -> dict:
        return asdict(self)


# fp16 sizes: xs 15.1 MiB, s 19.3 MiB (the proposed base), m 25.2 MiB (over the repo budget; for comparison).
# Most of the text encoder is its 49,408 x 64 token table (3.2 M of 3.4 M parameters).
CANDIDATES = {
    "xs": ToyBaseArch(),
    "s": ToyBaseArch(unet_channels=(32, 64, 96, 96)),
    "m": ToyBaseArch(unet_channels=(32, 64, 128, 128)),
}


def build_unet(arch: ToyBaseArch, sample_size: int = 8):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=sample_size, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=tuple(arch.unet_channels),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=arch.text_width, attention_head_dim=arch.unet_heads, norm_num_groups=32)


def build_vae(arch: ToyBaseArch, sample_size: int = 64):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=tuple(arch.vae_channels),
        layers_per_block=arch.vae_layers, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, sample_size=sample_size)


def build_text_encoder(arch: ToyBaseArch):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=arch.text_width, intermediate_size=4 * arch.text_width,
        num_hidden_layers=arch.text_layers, num_attention_heads=arch.text_heads, max_position_embeddings=77,
        hidden_act="quick_gelu", bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
        projection_dim=arch.text_width))


def build_scheduler():
    """SD1.5's training schedule (the DDPM betas every SD1 sampler assumes)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         num_train_timesteps=1000, clip_sample=False, steps_offset=1)


def param_count(module) -> int:
    return sum(p.numel() for p in module.parameters())

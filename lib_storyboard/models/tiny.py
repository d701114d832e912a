"""Tiny SD1.5-architecture components with random weights: the same classes and wiring as SD1.5, scaled down.

Used by the tests and benchmarks (real diffusers modules, the real CLIP tokenizer), never as a user's model.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SDComponents:
    unet: "torch.nn.Module"
    vae: "torch.nn.Module"
    text_encoder: "torch.nn.Module"
    tokenizer: object
    scheduler: object


def tiny_components(seed: int = 0, in_channels: int = 4, cross_dim: int = 32) -> SDComponents:
    """A 1.4 M-parameter UNet, 0.7 M VAE and 1.6 M CLIP text encoder; `in_channels=9` gives an inpaint UNet."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from .clip_tokenizer import load_clip_tokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=32, in_channels=in_channels, out_channels=4, layers_per_block=2,
        block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=cross_dim,
        attention_head_dim=8, norm_num_groups=32)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), norm_num_groups=32, sample_size=64)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=cross_dim, intermediate_size=37, num_hidden_layers=5,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407,
        pad_token_id=1, projection_dim=cross_dim))
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, clip_sample=False,
                              steps_offset=1)
    for m in (unet, vae, text_encoder):
        m.eval().requires_grad_(False)
    return SDComponents(unet, vae, text_encoder, load_clip_tokenizer(), scheduler)

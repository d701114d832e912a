"""Full-size SD1.5 models with random weights for the real-host ControlNet test: a single-file SD1.5 checkpoint (the
UNet, VAE and CLIP text encoder built from the SD1.5 configs this project ships, renamed to the ldm layout by
`formats.ldm_checkpoint.diffusers_to_ldm`) and an SD1.5 ControlNet in the original `control_model.*` layout (its
encoder a copy of that UNet's, its hint encoder and output convolutions random), both fp16 .safetensors.

Each part is built in fp32, halved at once and dropped, so the peak is about one fp32 UNet (3.4 GB) plus the halves.
"""
from __future__ import annotations

import gc
import json
import os

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SD15 = os.path.join(REPO, "lib_storyboard", "models", "sd15")
HINT_WIDTHS = (16, 16, 32, 32, 96, 96, 256)     # the ControlNet hint encoder's convolutions before its last one
HINT_STRIDES = (1, 1, 2, 1, 2, 1, 2)


def _config(part: str) -> dict:
    with open(os.path.join(SD15, part, "config.json"), encoding="utf-8") as f:
        return {k: v for k, v in json.load(f).items() if not k.startswith("_")}


def _half(module) -> dict:
    return {k: (v.detach().to(torch.float16) if v.is_floating_point() else v.detach()).contiguous()
            for k, v in module.state_dict().items()}


def write_sd15_checkpoint(path: str, seed: int = 0) -> dict:
    """The checkpoint at `path`; returns its ldm-keyed fp16 UNet tensors (`model.diffusion_model.*`) for the
    ControlNet."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from lib_storyboard.formats.ldm_checkpoint import UNET_PREFIX, diffusers_to_ldm, save_ldm_checkpoint

    torch.manual_seed(seed)
    ucfg, vcfg = _config("unet"), _config("vae")
    unet = _half(UNet2DConditionModel(**ucfg))
    gc.collect()
    vae = _half(AutoencoderKL(**vcfg))
    text_model = CLIPTextModel(CLIPTextConfig(**_config("text_encoder")))
    # A fresh LayerNorm's zero bias leaves every token's output at mean 0, and the host's prompt emphasis divides by
    # that mean (NaN); trained CLIP's final bias is not zero, so give it one.
    torch.nn.init.normal_(text_model.text_model.final_layer_norm.bias, std=0.5)
    text = _half(text_model)
    gc.collect()
    state = diffusers_to_ldm(unet, vae, text, ucfg, vcfg)
    save_ldm_checkpoint(path, state)
    return {k: v for k, v in state.items() if k.startswith(UNET_PREFIX)}


def write_sd15_controlnet(path: str, unet_ldm: dict, seed: int = 1, out_std: float = 0.05) -> None:
    """An SD1.5 ControlNet (openpose-shaped: a 3-channel hint) whose encoder is the checkpoint's and whose hint
    encoder and output 1x1 convolutions are random (normal, `out_std`), so the control changes the panel."""
    from safetensors.torch import save_file

    from lib_storyboard.formats.ldm_checkpoint import UNET_PREFIX

    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, std=out_std):
        return (torch.randn(*shape, generator=g) * std).to(torch.float16)

    out = {}
    for k, v in unet_ldm.items():
        name = k[len(UNET_PREFIX):]
        if name.startswith(("time_embed.", "input_blocks.", "middle_block.")):
            out["control_model." + name] = v.clone()
    width, ch = 3, None
    for i, w in enumerate(HINT_WIDTHS):
        out[f"control_model.input_hint_block.{2 * i}.weight"] = rnd(w, width, 3, 3, std=(2.0 / (9 * width)) ** 0.5)
        out[f"control_model.input_hint_block.{2 * i}.bias"] = rnd(w, std=0.0)
        width = w
    model_ch = unet_ldm[UNET_PREFIX + "input_blocks.0.0.weight"].shape[0]
    out[f"control_model.input_hint_block.{2 * len(HINT_WIDTHS)}.weight"] = rnd(model_ch, width, 3, 3)
    out[f"control_model.input_hint_block.{2 * len(HINT_WIDTHS)}.bias"] = rnd(model_ch, std=0.0)
    # one zero conv per input block, at that block's output width; then the middle block's
    n = 0
    while UNET_PREFIX + f"input_blocks.{n}.0.weight" in unet_ldm or \
            UNET_PREFIX + f"input_blocks.{n}.0.op.weight" in unet_ldm or \
            UNET_PREFIX + f"input_blocks.{n}.0.in_layers.0.weight" in unet_ldm:
        block = {k: v for k, v in unet_ldm.items() if k.startswith(UNET_PREFIX + f"input_blocks.{n}.")}
        ch = _block_out_width(block)
        out[f"control_model.zero_convs.{n}.0.weight"] = rnd(ch, ch, 1, 1)
        out[f"control_model.zero_convs.{n}.0.bias"] = rnd(ch)
        n += 1
    mid = unet_ldm[UNET_PREFIX + "middle_block.2.out_layers.3.weight"].shape[0]
    out["control_model.middle_block_out.0.weight"] = rnd(mid, mid, 1, 1)
    out["control_model.middle_block_out.0.bias"] = rnd(mid)
    save_file(out, path)


def _block_out_width(block: dict) -> int:
    """The output channels of one ldm input block (conv_in, resnet(+attention), or downsampler)."""
    for suffix in (".0.out_layers.3.weight", ".0.op.weight", ".0.weight"):
        for k, v in block.items():
            if k.endswith(suffix) and k.count(".") == suffix.count(".") + 3:
                return v.shape[0]
    raise ValueError(f"no output width in {sorted(block)[:3]}")


if __name__ == "__main__":   # time and peak memory of making both, for the README
    import resource
    import sys
    import time

    sys.path.insert(0, REPO)
    out_dir = sys.argv[1]
    t0 = time.time()
    unet = write_sd15_checkpoint(os.path.join(out_dir, "sd15-random.safetensors"))
    t1 = time.time()
    write_sd15_controlnet(os.path.join(out_dir, "control_sd15_openpose_random.safetensors"), unet)
    print(f"checkpoint {t1 - t0:.0f} s, controlnet {time.time() - t1:.0f} s, peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GB")

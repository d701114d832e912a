"""Layer names of kohya-style LoRA files, and the SD1 UNet's two naming schemes.

A kohya LoRA names each layer by its module path with dots turned into underscores, prefixed `lora_unet_` or
`lora_te_`. The UNet exists under two module layouts: diffusers (`down_blocks.{i}.attentions.{j}`) and the ldm/compvis
one the A1111 host runs (`input_blocks.{n}.1`). The attention sub-modules below a block (`transformer_blocks.*`,
`proj_in`, `proj_out`, `norm`) carry the same names in both, so only the block prefix needs translating:

    down_blocks.{i}.attentions.{j}  <->  input_blocks.{1 + (L+1)*i + j}.1     (j < L)
    mid_block.attentions.0          <->  middle_block.1
    up_blocks.{i}.attentions.{j}    <->  output_blocks.{(L+1)*i + j}.1        (j <= L)

with L = layers_per_block. Both layouts number the up path from the lowest resolution, so `up_blocks.{i}` and
`output_blocks` line up without reversing. A1111 converts diffusers-style kohya names with L = 2 hard-coded, so for
other layouts `kohya_unet_name` writes the compvis-style name, which A1111, Forge and ComfyUI all accept.
"""
from __future__ import annotations

import re

UNET_PREFIX = "lora_unet_"
TE_PREFIX = "lora_te_"

# The first component below an SD1 attention block; anything else at `output_blocks.{n}.1` is an upsampler.
_ATTENTION_CHILDREN = ("transformer_blocks", "proj_in", "proj_out", "norm")
_LDM_PREFIXES = ("model.diffusion_model.", "diffusion_model.")

_RE_COMPVIS = re.compile(r"(input_blocks|output_blocks)\.(\d+)\.1(?:\.(.+))?|middle_block\.1(?:\.(.+))?")
_RE_DIFFUSERS = re.compile(
    r"(down_blocks|up_blocks)\.(\d+)\.attentions\.(\d+)(?:\.(.+))?|mid_block\.attentions\.0(?:\.(.+))?")


class LayerNameError(ValueError):
    """A module path that is not an SD1 UNet attention sub-module (or not valid for the layout)."""


def _check_rest(rest: str | None, path: str) -> str:
    if rest is None:
        return ""
    if rest.split(".", 1)[0] not in _ATTENTION_CHILDREN:
        raise LayerNameError(f"'{path}' is not inside an SD1 UNet attention block.")
    return "." + rest


def compvis_to_diffusers_unet(path: str, layers_per_block: int = 2) -> str:
    """`input_blocks.1.1.transformer_blocks.0.attn1.to_q` -> `down_blocks.0.attentions.0.transformer_blocks.0...`.

    Accepts paths with or without a `diffusion_model.` / `model.diffusion_model.` prefix; returns a path relative to
    the UNet. Only attention sub-modules are translated; anything else raises LayerNameError.
    """
    p = path
    for prefix in _LDM_PREFIXES:
        if p.startswith(prefix):
            p = p[len(prefix):]
            break
    m = _RE_COMPVIS.fullmatch(p)
    if not m:
        raise LayerNameError(f"'{path}' is not an ldm UNet attention module path.")
    if m.group(1) is None:  # middle_block.1
        return "mid_block.attentions.0" + _check_rest(m.group(4), path)
    n, per_level = int(m.group(2)), layers_per_block + 1
    rest = _check_rest(m.group(3), path)
    if m.group(1) == "input_blocks":
        if n < 1 or (n - 1) % per_level >= layers_per_block:
            raise LayerNameError(f"'{path}' has no attention block with {layers_per_block} layers per block.")
        return f"down_blocks.{(n - 1) // per_level}.attentions.{(n - 1) % per_level}{rest}"
    return f"up_blocks.{n // per_level}.attentions.{n % per_level}{rest}"


def diffusers_to_compvis_unet(path: str, layers_per_block: int = 2) -> str:
    """The inverse of `compvis_to_diffusers_unet`: a diffusers UNet attention path -> the ldm path (no prefix)."""
    m = _RE_DIFFUSERS.fullmatch(path)
    if not m:
        raise LayerNameError(f"'{path}' is not a diffusers UNet attention module path.")
    if m.group(1) is None:
        return "middle_block.1" + _check_rest(m.group(5), path)
    i, j, per_level = int(m.group(2)), int(m.group(3)), layers_per_block + 1
    rest = _check_rest(m.group(4), path)
    if m.group(1) == "down_blocks":
        if j >= layers_per_block:
            raise LayerNameError(f"'{path}' does not exist with {layers_per_block} layers per block.")
        return f"input_blocks.{1 + per_level * i + j}.1{rest}"
    if j > layers_per_block:
        raise LayerNameError(f"'{path}' does not exist with {layers_per_block} layers per block.")
    return f"output_blocks.{per_level * i + j}.1{rest}"


def kohya_unet_name(diffusers_path: str, layers_per_block: int = 2) -> str:
    """The kohya layer name of a diffusers UNet module, e.g. `lora_unet_down_blocks_0_attentions_0_..._to_out_0`.

    With a layout other than SD1.5's 2 layers per block the compvis-style name (`lora_unet_input_blocks_...`) is
    returned, because A1111 would map the diffusers-style name onto the wrong block.
    """
    path = diffusers_path
    if layers_per_block != 2:
        path = diffusers_to_compvis_unet(diffusers_path, layers_per_block)
    return UNET_PREFIX + path.replace(".", "_")


def kohya_te_name(hf_path: str) -> str:
    """`text_model.encoder.layers.0.self_attn.q_proj` -> `lora_te_text_model_encoder_layers_0_self_attn_q_proj`.

    A leading `transformer.` (the A1111 path under `cond_stage_model.wrapped`) is dropped.
    """
    path = hf_path[len("transformer."):] if hf_path.startswith("transformer.text_model.") else hf_path
    if not path.startswith("text_model."):
        raise LayerNameError(f"'{hf_path}' is not a CLIP text-model module path.")
    return TE_PREFIX + path.replace(".", "_")

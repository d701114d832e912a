"""Single-file SD1 checkpoints with LDM key names, their ldm yaml, and diffusers config folders.

- `diffusers_to_ldm` renames diffusers UNet / VAE / CLIP state dicts into the one-file layout A1111, Forge and
  ComfyUI load (`model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.transformer.text_model.*`),
  for any number of levels and layers per block (the toy base is a scaled-down SD1).
- `write_ldm_yaml` writes the `v1-inference.yaml`-style config A1111 uses for a checkpoint with non-standard sizes
  (it reads `<checkpoint stem>.yaml` beside the file).
- `write_config_dir` writes what `StableDiffusionPipeline.from_single_file(ckpt, config=dir, local_files_only=True)`
  needs offline; `sd15_config_dir()` gives that folder for a standard SD1.5 checkpoint from the configs we ship.

The ldm UNet numbers its blocks flat: `input_blocks.0` is conv_in, then per level L resnet(+attention) blocks and a
downsampler; `output_blocks` run from the lowest resolution with L+1 blocks per level, the upsampler sitting after
the attention (`.2.conv`) or, on levels without attention, after the resnet (`.1.conv`).
"""
from __future__ import annotations

import json
import os
import re

import torch

from .atomic import atomic_path, atomic_write_text
from .kohya_names import diffusers_to_compvis_unet
from .safetensors_io import FormatError

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."
SD15_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "sd15")

_UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_CLIP_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers",
              "num_attention_heads", "max_position_embeddings", "hidden_act", "layer_norm_eps", "attention_dropout",
              "dropout", "initializer_range", "initializer_factor", "pad_token_id", "bos_token_id", "eos_token_id")


class CheckpointFormatError(FormatError):
    """A model or config that the SD1 single-file layout cannot express."""


def _config_dict(obj) -> dict:
    """A plain dict from a config dict, a diffusers FrozenDict, a transformers config, or a model/scheduler."""
    if hasattr(obj, "to_dict") and not isinstance(obj, dict):
        return obj.to_dict()
    cfg = getattr(obj, "config", obj)
    if hasattr(cfg, "to_dict") and not isinstance(cfg, dict):
        return cfg.to_dict()
    return dict(cfg)


def _scheduler_class(scheduler) -> str:
    """The scheduler's class name: from the scheduler itself or a config dict's `_class_name` (diffusers' own
    `scheduler.config` does not carry it, and guessing would write the wrong scheduler)."""
    if hasattr(scheduler, "config") and not isinstance(scheduler, dict):
        return type(scheduler).__name__
    name = dict(scheduler).get("_class_name")
    if not name:
        raise CheckpointFormatError("The scheduler config lacks '_class_name'; pass the scheduler itself.")
    return name


def _unet_levels(unet_config: dict) -> tuple[int, list[bool]]:
    """(layers_per_block, per down level: has cross-attention), after checking the UNet is an SD1-style UNet."""
    c = unet_config
    down, up = list(c["down_block_types"]), list(c["up_block_types"])
    attn = []
    for t in down:
        if t not in ("CrossAttnDownBlock2D", "DownBlock2D"):
            raise CheckpointFormatError(f"Down block type {t} has no SD1 single-file layout.")
        attn.append(t == "CrossAttnDownBlock2D")
    mirrored = ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)]
    if up != mirrored:
        raise CheckpointFormatError(f"Up block types {up} must mirror the down blocks ({mirrored}) for the ldm UNet.")
    if c.get("mid_block_type", "UNetMidBlock2DCrossAttn") != "UNetMidBlock2DCrossAttn":
        raise CheckpointFormatError("The ldm SD1 UNet needs a cross-attention mid block.")
    tl = c.get("transformer_layers_per_block", 1)
    if any(int(x) != 1 for x in (tl if isinstance(tl, (list, tuple)) else [tl])):
        raise CheckpointFormatError("The ldm SD1 UNet has one transformer layer per attention block.")
    for key, want in (("norm_num_groups", 32), ("class_embed_type", None), ("addition_embed_type", None),
                      ("flip_sin_to_cos", True), ("freq_shift", 0), ("conv_in_kernel", 3), ("conv_out_kernel", 3),
                      ("time_embedding_type", "positional"), ("num_class_embeds", None)):
        if key in c and c[key] != want:
            raise CheckpointFormatError(f"UNet setting {key}={c[key]!r} differs from the ldm SD1 UNet's {want!r}.")
    return int(c["layers_per_block"]), attn


def _check_vae(vae_config: dict) -> int:
    c = vae_config
    n = len(c["down_block_types"])
    if set(c["down_block_types"]) != {"DownEncoderBlock2D"} or set(c["up_block_types"]) != {"UpDecoderBlock2D"} \
            or len(c["up_block_types"]) != n:
        raise CheckpointFormatError("The ldm VAE needs DownEncoderBlock2D / UpDecoderBlock2D blocks only.")
    for key, want in (("norm_num_groups", 32), ("mid_block_add_attention", True), ("use_quant_conv", True),
                      ("use_post_quant_conv", True)):
        if key in c and c[key] != want:
            raise CheckpointFormatError(f"VAE setting {key}={c[key]!r} differs from the ldm VAE's {want!r}.")
    return n


def _unet_key(key: str, per_level: int, up_attn: list[bool]) -> str:
    mod, _, param = key.rpartition(".")
    if mod in _UNET_FIXED:
        return f"{_UNET_FIXED[mod]}.{param}"
    m = re.fullmatch(r"(down_blocks|up_blocks)\.(\d+)\.resnets\.(\d+)\.(\w+)\.(\w+)", key)
    if m and m.group(4) in _UNET_RESNET:
        i, j = int(m.group(2)), int(m.group(3))
        n = 1 + per_level * i + j if m.group(1) == "down_blocks" else per_level * i + j
        side = "input_blocks" if m.group(1) == "down_blocks" else "output_blocks"
        return f"{side}.{n}.0.{_UNET_RESNET[m.group(4)]}.{m.group(5)}"
    m = re.fullmatch(r"mid_block\.resnets\.(\d+)\.(\w+)\.(\w+)", key)
    if m and m.group(2) in _UNET_RESNET:
        return f"middle_block.{2 * int(m.group(1))}.{_UNET_RESNET[m.group(2)]}.{m.group(3)}"
    m = re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(\w+)", key)
    if m:
        return f"input_blocks.{per_level * (int(m.group(1)) + 1)}.0.op.{m.group(2)}"
    m = re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(\w+)", key)
    if m:
        i = int(m.group(1))
        return f"output_blocks.{per_level * i + per_level - 1}.{2 if up_attn[i] else 1}.conv.{m.group(2)}"
    if ".attentions." in key:
        return diffusers_to_compvis_unet(mod, per_level - 1) + "." + param
    raise CheckpointFormatError(f"UNet weight {key} has no place in the ldm SD1 layout.")


def _vae_key(key: str, n_levels: int) -> tuple[str, bool]:
    """(ldm key, whether a linear attention weight must become a 1x1 conv)."""
    m = re.fullmatch(r"(encoder|decoder)\.(conv_in|conv_out|conv_norm_out)\.(\w+)", key)
    if m:
        return f"{m.group(1)}.{'norm_out' if m.group(2) == 'conv_norm_out' else m.group(2)}.{m.group(3)}", False
    if re.fullmatch(r"(post_)?quant_conv\.\w+", key):
        return key, False
    m = re.fullmatch(
        r"(encoder\.down|decoder\.up)_blocks\.(\d+)\.(resnets\.(\d+)|downsamplers\.0|upsamplers\.0)\.(\w+)\.(\w+)", key)
    if m:
        side, i = m.group(1), int(m.group(2))
        level = i if side == "encoder.down" else n_levels - 1 - i  # the ldm decoder numbers levels from the top
        if m.group(4) is not None:
            sub = "nin_shortcut" if m.group(5) == "conv_shortcut" else m.group(5)
            return f"{side}.{level}.block.{m.group(4)}.{sub}.{m.group(6)}", False
        kind = "downsample" if side == "encoder.down" else "upsample"
        return f"{side}.{level}.{kind}.{m.group(5)}.{m.group(6)}", False
    m = re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(\w+)\.(\w+)", key)
    if m:
        return f"{m.group(1)}.mid.block_{int(m.group(2)) + 1}.{m.group(3)}.{m.group(4)}", False
    m = re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(\w+)", key)
    if m:
        return f"{m.group(1)}.mid.attn_1.{_VAE_ATTN[m.group(2)]}.{m.group(3)}", m.group(2) != "group_norm"
    raise CheckpointFormatError(f"VAE weight {key} has no place in the ldm layout.")


def diffusers_to_ldm(unet_sd: dict, vae_sd: dict, text_encoder_sd: dict, unet_config, vae_config) -> dict:
    """One state dict with SD1 single-file (LDM) key names; tensors are shared, not copied, except that the VAE's
    linear attention weights become the ldm's 1x1 convolutions. Every input key lands somewhere or this raises."""
    ucfg, vcfg = _config_dict(unet_config), _config_dict(vae_config)
    layers, attn = _unet_levels(ucfg)
    up_attn = list(reversed(attn))
    n_vae = _check_vae(vcfg)
    out: dict[str, torch.Tensor] = {}

    def put(key: str, value: torch.Tensor) -> None:
        if key in out:
            raise CheckpointFormatError(f"Two weights map to {key}; the configs do not match the state dicts.")
        out[key] = value

    for k, v in unet_sd.items():
        put(UNET_PREFIX + _unet_key(k, layers + 1, up_attn), v)
    for k, v in vae_sd.items():
        new, to_conv = _vae_key(k, n_vae)
        put(VAE_PREFIX + new, v.reshape(*v.shape, 1, 1) if to_conv and v.dim() == 2 else v)
    for k, v in text_encoder_sd.items():
        if not k.startswith("text_model."):
            raise CheckpointFormatError(f"Text-encoder weight {k} is not part of a CLIPTextModel.")
        put(TEXT_PREFIX + k, v)
    return out


def _write_json(path: str, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _public(cfg: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items() if not k.startswith("_")}


def _text_config_json(text_config) -> dict:
    cfg = _config_dict(text_config)
    data = {k: cfg[k] for k in _CLIP_KEYS if k in cfg}
    data.update(architectures=["CLIPTextModel"], model_type="clip_text_model", torch_dtype="float32")
    return data


def write_config_dir(out_dir: str, unet_config, vae_config, text_config, scheduler_config) -> str:
    """Write model_index.json (safety checker and feature extractor null), unet/vae/text_encoder/scheduler configs
    and the CLIP tokenizer files: what `from_single_file(ckpt, config=out_dir, local_files_only=True)` needs.
    Each config may be a dict, a diffusers/transformers config, or the model itself; the scheduler is the
    scheduler itself or a config dict with `_class_name`."""
    import diffusers

    from ..models.clip_tokenizer import write_clip_tokenizer

    version = diffusers.__version__
    ucfg, vcfg = _config_dict(unet_config), _config_dict(vae_config)
    _unet_levels(ucfg)
    _check_vae(vcfg)
    sched_cls = _scheduler_class(scheduler_config)
    _write_json(os.path.join(out_dir, "model_index.json"), {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": version,
        "feature_extractor": [None, None], "image_encoder": [None, None], "safety_checker": [None, None],
        "requires_safety_checker": False, "scheduler": ["diffusers", sched_cls],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]})
    _write_json(os.path.join(out_dir, "unet", "config.json"),
                {"_class_name": "UNet2DConditionModel", "_diffusers_version": version, **_public(ucfg)})
    _write_json(os.path.join(out_dir, "vae", "config.json"),
                {"_class_name": "AutoencoderKL", "_diffusers_version": version, **_public(vcfg)})
    _write_json(os.path.join(out_dir, "text_encoder", "config.json"), _text_config_json(text_config))
    _write_json(os.path.join(out_dir, "scheduler", "scheduler_config.json"),
                {"_class_name": sched_cls, "_diffusers_version": version,
                 **_public(_config_dict(scheduler_config))})
    if not os.path.isfile(os.path.join(out_dir, "tokenizer", "merges.txt")):
        write_clip_tokenizer(os.path.join(out_dir, "tokenizer"))
    return out_dir


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def sd15_config_dir(cache_root: str | None = None) -> str:
    """A config folder for a standard SD1.5 checkpoint: the json configs shipped in `models/sd15` plus the CLIP
    tokenizer files, assembled in the user cache (the package folder may be read-only)."""
    return assembled_config_dir(SD15_DIR, "sd15-config", cache_root)


def assembled_config_dir(src: str, name: str, cache_root: str | None = None) -> str:
    """The json configs under `src` plus the CLIP tokenizer files, assembled in the user cache as `name`: the
    tokenizer is built from open-clip's BPE file, never shipped as a copy."""
    from ..cache import cache_root as default_root

    out = os.path.join(cache_root or default_root(), name)
    for d, _, files in os.walk(src):
        for f in files:
            if f.endswith(".json"):
                rel = os.path.relpath(os.path.join(d, f), src)
                text, dst = _read_text(os.path.join(src, rel)), os.path.join(out, rel)
                if not os.path.isfile(dst) or _read_text(dst) != text:
                    atomic_write_text(dst, text)
    if not os.path.isfile(os.path.join(out, "tokenizer", "merges.txt")):
        from ..models.clip_tokenizer import write_clip_tokenizer

        write_clip_tokenizer(os.path.join(out, "tokenizer"))
    return out


def _is_clip_l(text_json: dict) -> bool:
    with open(os.path.join(SD15_DIR, "text_encoder", "config.json"), encoding="utf-8") as f:
        ref = json.load(f)
    keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "max_position_embeddings", "hidden_act")
    return all(text_json.get(k) == ref[k] for k in keys)


def write_ldm_yaml(path: str, unet_config, vae_config, text_hidden: int = 768, *, text_config=None,
                   scheduler_config=None) -> str:
    """Write an ldm `v1-inference.yaml`-style config for this UNet/VAE (A1111 reads `<checkpoint stem>.yaml`).

    The text encoder is ldm's FrozenCLIPEmbedder. A CLIP other than SD1.5's CLIP-L (pass its `text_config`) is
    described by a folder `<yaml stem>-clip/` (config.json + tokenizer) written beside the yaml and named by its
    absolute path, since ldm builds the text model from `version`. The schedule defaults to SD1.5's.
    """
    import yaml

    ucfg, vcfg = _config_dict(unet_config), _config_dict(vae_config)
    layers, attn = _unet_levels(ucfg)
    _check_vae(vcfg)
    if int(ucfg["cross_attention_dim"]) != int(text_hidden):
        raise CheckpointFormatError(
            f"The UNet's cross_attention_dim {ucfg['cross_attention_dim']} differs from the text width {text_hidden}.")
    text_json = _text_config_json(text_config) if text_config is not None else None
    if text_json is None and int(text_hidden) != 768:
        raise CheckpointFormatError("A text encoder narrower or wider than CLIP-L needs its text_config.")
    if text_json is not None and int(text_json["hidden_size"]) != int(text_hidden):
        raise CheckpointFormatError(f"text_config hidden_size {text_json['hidden_size']} differs from {text_hidden}.")
    if ucfg.get("upcast_attention"):
        raise CheckpointFormatError("The ldm SD1 UNet has no upcast_attention setting.")

    heads = ucfg.get("num_attention_heads") or ucfg["attention_head_dim"]  # SD1 configs store heads here
    heads_set = set(heads) if isinstance(heads, (list, tuple)) else {heads}
    if len(heads_set) != 1:
        raise CheckpointFormatError(f"The ldm SD1 UNet uses one head count on every level, not {list(heads_set)}.")
    blocks = [int(b) for b in ucfg["block_out_channels"]]
    if any(b % blocks[0] for b in blocks):
        raise CheckpointFormatError(f"UNet widths {blocks} must be multiples of the first for the ldm UNet.")
    vblocks = [int(b) for b in vcfg["block_out_channels"]]
    if any(b % vblocks[0] for b in vblocks):
        raise CheckpointFormatError(f"VAE widths {vblocks} must be multiples of the first for the ldm VAE.")

    sched = _config_dict(scheduler_config) if scheduler_config is not None else {}
    if sched.get("beta_schedule", "scaled_linear") != "scaled_linear":
        raise CheckpointFormatError("The ldm 'linear' schedule is diffusers' 'scaled_linear'; other schedules differ.")
    inpaint = int(ucfg["in_channels"]) == 9
    unet_params = {
        "image_size": int(ucfg["sample_size"]), "in_channels": int(ucfg["in_channels"]),
        "out_channels": int(ucfg["out_channels"]), "model_channels": blocks[0],
        "attention_resolutions": sorted((2 ** i for i, a in enumerate(attn) if a), reverse=True),
        "num_res_blocks": layers, "channel_mult": [b // blocks[0] for b in blocks],
        "num_heads": int(heads_set.pop()), "use_spatial_transformer": True, "transformer_depth": 1,
        "context_dim": int(text_hidden), "use_checkpoint": False, "legacy": False,
    }
    if ucfg.get("use_linear_projection"):
        unet_params["use_linear_in_transformer"] = True
    params = {
        "linear_start": float(sched.get("beta_start", 0.00085)), "linear_end": float(sched.get("beta_end", 0.012)),
        "num_timesteps_cond": 1, "log_every_t": 200, "timesteps": int(sched.get("num_train_timesteps", 1000)),
        "first_stage_key": "jpg", "cond_stage_key": "txt", "image_size": int(ucfg["sample_size"]),
        "channels": int(vcfg["latent_channels"]), "cond_stage_trainable": False,
        "conditioning_key": "hybrid" if inpaint else "crossattn", "monitor": "val/loss_simple_ema",
        "scale_factor": float(vcfg.get("scaling_factor", 0.18215)), "use_ema": False,
    }
    if sched.get("prediction_type", "epsilon") == "v_prediction":
        params["parameterization"] = "v"
    if inpaint:
        params["finetune_keys"] = None
    params["unet_config"] = {"target": "ldm.modules.diffusionmodules.openaimodel.UNetModel", "params": unet_params}
    params["first_stage_config"] = {"target": "ldm.models.autoencoder.AutoencoderKL", "params": {
        "embed_dim": int(vcfg["latent_channels"]), "monitor": "val/rec_loss",
        "ddconfig": {"double_z": True, "z_channels": int(vcfg["latent_channels"]),
                     "resolution": int(vcfg.get("sample_size", 256)), "in_channels": int(vcfg["in_channels"]),
                     "out_ch": int(vcfg["out_channels"]), "ch": vblocks[0],
                     "ch_mult": [b // vblocks[0] for b in vblocks], "num_res_blocks": int(vcfg["layers_per_block"]),
                     "attn_resolutions": [], "dropout": 0.0},
        "lossconfig": {"target": "torch.nn.Identity"}}}
    cond = {"target": "ldm.modules.encoders.modules.FrozenCLIPEmbedder"}
    if text_json is not None and not _is_clip_l(text_json):
        from ..models.clip_tokenizer import write_clip_tokenizer

        clip_dir = os.path.abspath(os.path.splitext(path)[0] + "-clip")
        write_clip_tokenizer(clip_dir)
        _write_json(os.path.join(clip_dir, "config.json"), text_json)
        cond["params"] = {"version": clip_dir}
    params["cond_stage_config"] = cond
    target = "ldm.models.diffusion.ddpm." + ("LatentInpaintDiffusion" if inpaint else "LatentDiffusion")
    doc = {"model": {"base_learning_rate": 1.0e-4, "target": target, "params": params}}
    atomic_write_text(path, yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    return path


def save_ldm_checkpoint(path: str, state_dict: dict, metadata: dict[str, str] | None = None) -> None:
    """Write an LDM-keyed state dict as .safetensors, atomically."""
    from safetensors.torch import save_file

    if not path.endswith(".safetensors"):
        raise CheckpointFormatError(f"Checkpoints are written as .safetensors; {os.path.basename(path)!r} is not.")
    tensors = {k: v.detach().contiguous() for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)


__all__ = ["diffusers_to_ldm", "write_config_dir", "write_ldm_yaml", "sd15_config_dir", "assembled_config_dir",
           "save_ldm_checkpoint", "CheckpointFormatError"]

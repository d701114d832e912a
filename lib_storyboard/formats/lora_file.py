"""Kohya-key LoRA files (.safetensors): what A1111, Forge, ComfyUI and civitai read.

Per layer `<name>.lora_down.weight` [r, in] (conv: [r, in, kh, kw]), `<name>.lora_up.weight` [out, r] (conv:
[out, r, 1, 1]) and `<name>.alpha` (0-d); the layer's weight delta is `up @ down * alpha / r`. Embeddings travel in the
same file as `bundle_emb.<stem>.string_to_param.*` [n, d] (A1111 >= 1.7 registers them while the LoRA is active).
Metadata is a flat str -> str map; `ss_*` keys follow kohya sd-scripts, which the hosts' LoRA pages read.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from dataclasses import dataclass

import torch

from .atomic import atomic_write_bytes
from .safetensors_io import FormatError, read_safetensors

FORMAT_VERSION = "1"
BUNDLE_PREFIX = "bundle_emb."
_SAFE_LAYER = re.compile(r"[A-Za-z0-9_]+")
_SAFE_STEM = re.compile(r"[A-Za-z0-9_\-]+")


class LoraFormatError(FormatError):
    """A LoRA file or LoRA data that cannot be written or read as a kohya-style LoRA."""


@dataclass
class LoraLayer:
    """One layer's low-rank update: delta = up @ down * alpha / rank (flattened over conv kernels)."""

    down: torch.Tensor  # [r, in] or [r, in, kh, kw]
    up: torch.Tensor  # [out, r]
    alpha: float

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    @property
    def scale(self) -> float:
        return float(self.alpha) / self.rank

    def delta(self) -> torch.Tensor:
        """The weight delta in the layer's own weight shape ([out, in] or [out, in, kh, kw]), float32."""
        down, up = self.down.float(), self.up.float().reshape(self.up.shape[0], -1)
        d = (up @ down.reshape(self.rank, -1)) * self.scale
        return d.reshape(up.shape[0], *down.shape[1:])


def _check_layer(name: str, layer: LoraLayer) -> None:
    if not _SAFE_LAYER.fullmatch(name or ""):
        raise LoraFormatError(f"LoRA layer name {name!r} must be letters, digits and underscores only (no dots).")
    down, up = layer.down, layer.up
    if down.dim() not in (2, 4) or up.dim() not in (2, 4) or up.shape[1] != down.shape[0] or \
            (up.dim() == 4 and tuple(up.shape[2:]) != (1, 1)):
        raise LoraFormatError(
            f"LoRA layer {name} has mismatched shapes down {tuple(down.shape)} / up {tuple(up.shape)}.")
    if not (torch.isfinite(down).all() and torch.isfinite(up).all()):
        raise LoraFormatError(f"LoRA layer {name} contains NaN or infinite values; training diverged.")


def _tensors(layers: dict[str, LoraLayer], bundle: dict[str, torch.Tensor] | None,
             dtype: torch.dtype) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, layer in layers.items():
        _check_layer(name, layer)
        up = layer.up.reshape(layer.up.shape[0], layer.rank)
        if layer.down.dim() == 4:  # hosts build a 1x1 Conv2d for the up half of a conv LoRA
            up = up[:, :, None, None]
        out[f"{name}.lora_down.weight"] = layer.down.detach().to("cpu", dtype).contiguous()
        out[f"{name}.lora_up.weight"] = up.detach().to("cpu", dtype).contiguous()
        out[f"{name}.alpha"] = torch.tensor(float(layer.alpha), dtype=torch.float32)
    for stem, vec in (bundle or {}).items():
        if not _SAFE_STEM.fullmatch(stem or ""):
            raise LoraFormatError(f"Bundled embedding name {stem!r} must be letters, digits, '-' and '_' only.")
        vec = vec.detach().to("cpu", torch.float32)
        vec = vec.unsqueeze(0) if vec.dim() == 1 else vec
        if vec.dim() != 2 or not torch.isfinite(vec).all():
            raise LoraFormatError(f"Bundled embedding {stem} must be a finite [n, d] tensor, got {tuple(vec.shape)}.")
        out[f"{BUNDLE_PREFIX}{stem}.string_to_param.*"] = vec.contiguous()
    return out


def addnet_hash(data: bytes | str) -> str:
    """sha256 of a safetensors file's tensor payload (everything after the header), as kohya and A1111 compute
    `sshs_model_hash`: metadata edits do not change it. `data` is the file's bytes or its path."""
    if not isinstance(data, str):
        return hashlib.sha256(data[8 + int.from_bytes(data[:8], "little"):]).hexdigest()
    h = hashlib.sha256()
    with open(data, "rb") as f:
        f.seek(8 + int.from_bytes(f.read(8), "little"))
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_lora(path: str, layers: dict[str, LoraLayer], bundle: dict[str, torch.Tensor] | None = None,
              metadata: dict[str, str] | None = None, dtype: torch.dtype = torch.float16) -> dict[str, str]:
    """Write a kohya-key LoRA atomically; returns the metadata written (with `sshs_model_hash` and the bundle's
    `storyboard_tokens` / `storyboard_vectors_per_token` added)."""
    from safetensors.torch import save

    if not path.endswith(".safetensors"):
        raise LoraFormatError(f"LoRA files are written as .safetensors; {os.path.basename(path)!r} is not.")
    if not layers and not bundle:
        raise LoraFormatError("A LoRA file needs at least one layer or bundled embedding.")
    meta = dict(metadata or {})
    bad = [k for k, v in meta.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise LoraFormatError(f"LoRA metadata values must be strings; {bad[0]!r} is not.")
    tensors = _tensors(layers, bundle, dtype)
    if bundle:
        meta["storyboard_tokens"] = json.dumps(list(bundle))
        meta["storyboard_vectors_per_token"] = json.dumps(
            {stem: int(v.shape[0]) if v.dim() == 2 else 1 for stem, v in bundle.items()})
    meta["sshs_model_hash"] = addnet_hash(save(tensors))  # the payload does not depend on the metadata
    atomic_write_bytes(path, save(tensors, metadata=meta))
    return meta


def load_lora(path: str) -> tuple[dict[str, LoraLayer], dict[str, torch.Tensor], dict[str, str]]:
    """Read a kohya-key LoRA: (layers with up as [out, r], bundled embeddings [n, d], metadata)."""
    tensors, meta = read_safetensors(path, "LoRA")
    parts: dict[str, dict[str, torch.Tensor]] = {}
    bundle: dict[str, torch.Tensor] = {}
    for key, t in tensors.items():
        if key.startswith(BUNDLE_PREFIX):
            stem, _, rest = key[len(BUNDLE_PREFIX):].partition(".")
            if stem in bundle:
                raise LoraFormatError(
                    f"Bundled embedding {stem} holds more than one tensor in {os.path.basename(path)!r}.")
            bundle[stem] = t.float().unsqueeze(0) if t.dim() == 1 else t.float()
            continue
        name, _, part = key.partition(".")
        if part not in ("lora_down.weight", "lora_up.weight", "alpha"):
            raise LoraFormatError(f"{os.path.basename(path)!r} has a key this loader does not know: {key}.")
        parts.setdefault(name, {})[part] = t
    layers = {}
    for name, p in parts.items():
        if "lora_down.weight" not in p or "lora_up.weight" not in p:
            raise LoraFormatError(f"LoRA layer {name} in {os.path.basename(path)!r} lacks its up or down weight.")
        down, up = p["lora_down.weight"], p["lora_up.weight"]
        up = up.reshape(up.shape[0], -1)
        alpha = float(p["alpha"].item()) if "alpha" in p else float(down.shape[0])  # no alpha: scale 1, as the hosts do
        layers[name] = LoraLayer(down=down, up=up, alpha=alpha)
        _check_layer(name, layers[name])
    return layers, bundle, meta


def _resolution_text(resolution: int | tuple[int, int]) -> tuple[str, str]:
    w, h = (resolution, resolution) if isinstance(resolution, int) else (int(resolution[0]), int(resolution[1]))
    return f"({w}, {h})", f"{w}x{h}"


def ss_metadata(*, output_name: str, dim: int, alpha: float, resolution: int | tuple[int, int],
                clip_skip: int | None, num_train_images: int, tag_frequency: dict, base_model_name: str,
                training_started_at: float, trigger_words: list[str], extra: dict | None = None) -> dict[str, str]:
    """The kohya `ss_*` keys the hosts read (SD1 LoRA), the SAI `modelspec.*` basics, and our `storyboard_*` keys.

    `tag_frequency` is {dataset: {tag: count}}; a flat {tag: count} is filed under the output name. Values of
    `extra` that are not strings are stored as JSON.
    """
    if tag_frequency and all(isinstance(v, (int, float)) for v in tag_frequency.values()):
        tag_frequency = {output_name: tag_frequency}
    ss_res, spec_res = _resolution_text(resolution)
    started = float(training_started_at)
    meta = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(int(dim)),
        "ss_network_alpha": str(float(alpha)),
        "ss_output_name": output_name,
        "ss_sd_model_name": base_model_name,
        "ss_base_model_version": "sd_v1",
        "ss_v2": "False",
        "ss_resolution": ss_res,
        "ss_clip_skip": str(clip_skip),
        "ss_num_train_images": str(int(num_train_images)),
        "ss_tag_frequency": json.dumps(tag_frequency),
        "ss_training_started_at": str(started),
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "stable-diffusion-v1/lora",
        "modelspec.implementation": "diffusers",
        "modelspec.title": output_name,
        "modelspec.resolution": spec_res,
        "modelspec.prediction_type": "epsilon",
        "modelspec.date": datetime.datetime.fromtimestamp(int(started), datetime.timezone.utc).isoformat(),
        "modelspec.trigger_phrase": ", ".join(trigger_words),
        "storyboard_format_version": FORMAT_VERSION,
        "storyboard_trigger_words": json.dumps(list(trigger_words)),
    }
    for k, v in (extra or {}).items():
        meta[str(k)] = v if isinstance(v, str) else json.dumps(v)
    return meta


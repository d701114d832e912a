"""The trained storyboard models found in a LoRA folder: which exist, which is newest, and their token vectors.

A storyboard model is a LoRA file whose metadata carries `storyboard_version`; its shot tokens travel inside it
(`bundle_emb.<stem>.string_to_param.*`), so the LoRA file alone is the whole model.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from safetensors import safe_open

from . import shots


@dataclass
class StoryboardModel:
    name: str
    path: str
    trained_at: float
    step: int
    metadata: dict

    def as_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "trained_at": self.trained_at, "step": self.step,
                "triggers": list(shots.TRIGGERS), "base_model": self.metadata.get("ss_sd_model_name", ""),
                "resolution": self.metadata.get("ss_resolution", ""),
                "images": int(self.metadata.get("ss_num_train_images", "0") or 0)}


def read_metadata(path: str) -> dict:
    try:
        with safe_open(path, framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception:
        return {}


def list_models(lora_dirs: list[str]) -> list[StoryboardModel]:
    """Storyboard models under the given folders (recursively), newest first; unreadable files are ignored."""
    found: dict[str, StoryboardModel] = {}
    for root in lora_dirs:
        if not root or not os.path.isdir(root):
            continue
        for folder, dirs, files in os.walk(root, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for fn in sorted(files):
                if not fn.endswith(".safetensors"):
                    continue
                path = os.path.join(folder, fn)
                meta = read_metadata(path)
                if "storyboard_version" not in meta:
                    continue
                name = fn[: -len(".safetensors")]
                found.setdefault(name, StoryboardModel(
                    name, path, float(meta.get("storyboard_trained_at", os.path.getmtime(path)) or 0),
                    int(meta.get("storyboard_step", "0") or 0), meta))
    return sorted(found.values(), key=lambda m: -m.trained_at)


def find_model(lora_dirs: list[str], name: str | None = None) -> StoryboardModel | None:
    """The model called `name`, or the newest when no name is given."""
    models = list_models(lora_dirs)
    if not name:
        return models[0] if models else None
    return next((m for m in models if m.name == name), None)


def token_vectors(path: str) -> dict[str, torch.Tensor]:
    """The shot-token vectors bundled in a storyboard LoRA file, stem → (n, dim) fp32."""
    out = {}
    with safe_open(path, framework="pt") as f:
        keys = set(f.keys())
        for stem in shots.STEMS:
            parts = sorted(k for k in keys if k.startswith(f"bundle_emb.{stem}."))
            if parts:
                out[stem] = f.get_tensor(parts[0]).float()
    missing = [s for s in shots.STEMS if s not in out]
    if missing:
        raise ValueError(f"{os.path.basename(path)} carries no vectors for {', '.join(missing)}.")
    return out

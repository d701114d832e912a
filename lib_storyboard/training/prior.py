"""Prior preservation (DreamBooth, Ruiz et al. 2022): class images drawn by the base model itself, before any
LoRA is attached, from each shot's plain words without its trigger; each training step then also denoises a batch
of them under their class prompt, so the LoRA is pulled back towards what the base drew for prompts it was not
meant to change.

Class images are PNG files cached per checkpoint and per (prompt, size, sampler settings), image k drawn from
seed k: a later run, of any model name, on the same checkpoint reuses them and draws only the ones it lacks.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import shots
from ..dataset.images import load_rgb
from ..formats.atomic import atomic_path, atomic_write_text
from .preview import sample

SAMPLER = "ddim-eta0-cfg/1"     # training/preview.py's sampler; part of the cache key, so a change misses


def class_prompt(template: str, shot: shots.Shot) -> str:
    return template.replace("{shot}", shot.label)


def model_identity(adapter) -> str:
    """The checkpoint's short hash; without one (components built in memory, a host that did not hash the file),
    a hash of the weights of the layers the LoRA attaches to, which differ between checkpoints."""
    if adapter.model_hash:
        return adapter.model_hash
    h = hashlib.sha256()
    for name, module in adapter.lora_targets(False):
        h.update(name.encode())
        h.update(module.weight.detach().float().cpu().numpy().tobytes())
    return "w" + h.hexdigest()[:10]


def cache_folder(root: str, identity: str, prompt: str, size: int, steps: int, cfg_scale: float,
                 clip_skip: int) -> str:
    key = {"model": identity, "prompt": prompt, "size": size, "steps": steps, "cfg": cfg_scale,
           "clip_skip": clip_skip, "negative": "", "sampler": SAMPLER}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(root, f"{identity}-{digest}")


def _image_path(folder: str, k: int) -> str:
    return os.path.join(folder, f"{k:05d}.png")


def cached_class_images(folder: str, n: int) -> list[str]:
    """Class images 0..n-1 already in `folder`, up to the first missing one."""
    paths = []
    for k in range(n):
        if not os.path.isfile(_image_path(folder, k)):
            break
        paths.append(_image_path(folder, k))
    return paths


def ensure_class_images(adapter, folder: str, prompt: str, n: int, size: int, steps: int, cfg_scale: float,
                        batch: int, autocast_dtype=None, should_stop: Callable[[], bool] = lambda: False
                        ) -> tuple[list[str], int]:
    """The paths of class images 0..n-1 in `folder`, drawing (and writing, each atomically) the missing ones;
    returns (paths, how many were drawn now). Stops between batches when asked: the paths written so far."""
    paths = [_image_path(folder, k) for k in range(n)]
    missing = [k for k, p in enumerate(paths) if not os.path.isfile(p)]
    if missing and not os.path.isfile(os.path.join(folder, "prompt.json")):
        atomic_write_text(os.path.join(folder, "prompt.json"),
                          json.dumps({"prompt": prompt, "size": size, "steps": steps, "cfg": cfg_scale,
                                      "sampler": SAMPLER}, indent=1))
    drawn = 0
    for i in range(0, len(missing), max(1, batch)):
        if should_stop():
            return [p for p in paths if os.path.isfile(p)], drawn
        ks = missing[i:i + batch]
        imgs = sample(adapter, [prompt] * len(ks), {}, ks, (size, size), steps=steps, cfg=cfg_scale,
                      autocast_dtype=autocast_dtype, batch=len(ks))
        for k, im in zip(ks, imgs):
            with atomic_path(paths[k]) as tmp:
                im.save(tmp, format="PNG")
            drawn += 1
    return paths, drawn


@dataclass
class PriorData:
    """The encoded class images of each shot and their captions; `pick` chooses, per instance of a batch, a class
    image of the same shot, so the prior batch has the instance batch's mix of shots."""
    prompts: dict[str, str] = field(default_factory=dict)          # shot key -> class prompt
    means: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    stds: dict[str, list[torch.Tensor]] = field(default_factory=dict)

    def add(self, key: str, prompt: str, paths: list[str], encode) -> None:
        self.prompts[key] = prompt
        for p in paths:
            img = load_rgb(p, min_side=8)
            x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
            mean, std = encode(x)
            self.means.setdefault(key, []).append(mean[0])
            self.stds.setdefault(key, []).append(std[0])

    def pick(self, shot_keys: list[str], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """(means, stds, captions) of one class image per shot key, chosen with `gen`."""
        draws = torch.randint(0, 1 << 30, (len(shot_keys),), generator=gen).tolist()
        chosen = [(k, d % len(self.means[k])) for k, d in zip(shot_keys, draws)]
        return (torch.stack([self.means[k][j] for k, j in chosen]), torch.stack([self.stds[k][j] for k, j in chosen]),
                [self.prompts[k] for k, _ in chosen])

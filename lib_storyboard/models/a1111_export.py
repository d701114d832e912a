"""Put the shipped toy-world base where A1111 lists checkpoints: the .safetensors plus the `.yaml` A1111 reads
beside a checkpoint of non-standard size, and the small CLIP folder that yaml names.

The yaml names that folder by its absolute path (ldm builds the text model from `version`), so it is written on
the user's machine, here, and never shipped.
"""
from __future__ import annotations

import json
import os
import shutil

from ..formats.atomic import atomic_path
from ..formats.ldm_checkpoint import write_ldm_yaml


class ExportError(ValueError):
    """The toy base cannot be exported to that folder; one sentence."""


def export_checkpoint(checkpoint: str, dest_dir: str, name: str | None = None) -> list[str]:
    """Copy `checkpoint` (with its `<stem>.config/` folder) into `dest_dir` as `<name>.safetensors` and write
    `<name>.yaml` + `<name>-clip/`; returns the written paths."""
    config_dir = os.path.splitext(checkpoint)[0] + ".config"
    if not os.path.isfile(checkpoint) or not os.path.isdir(config_dir):
        raise ExportError(f"{checkpoint} or its config folder {os.path.basename(config_dir)} is missing.")
    if not os.path.isdir(dest_dir):
        raise ExportError(f"{dest_dir} is not a folder (give the WebUI's models/Stable-diffusion).")
    name = name or os.path.splitext(os.path.basename(checkpoint))[0]

    def cfg(part: str, file: str = "config.json") -> dict:
        with open(os.path.join(config_dir, part, file), encoding="utf-8") as f:
            return json.load(f)

    unet, vae, text = cfg("unet"), cfg("vae"), cfg("text_encoder")
    target = os.path.join(dest_dir, name + ".safetensors")
    yaml_path = os.path.join(dest_dir, name + ".yaml")
    # The yaml first: it validates the sizes, and a checkpoint A1111 sees without its yaml would load as SD1.5.
    write_ldm_yaml(yaml_path, unet, vae, int(text["hidden_size"]), text_config=text,
                   scheduler_config=cfg("scheduler", "scheduler_config.json"))
    with atomic_path(target) as tmp:
        shutil.copyfile(checkpoint, tmp)
    return [target, yaml_path, os.path.join(dest_dir, name + "-clip")]

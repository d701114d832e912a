"""The checks of a training request that need no image decoded and no model loaded, made when the request arrives
(the tab's Train button, POST /storyboard/v1/train): a run that could not start is refused at once, one sentence
per field, and nothing is queued or written. The run checks again what may change meanwhile, and what only
decoding shows (corrupt or tiny images, a changed dataset on resume) fails the run, again with one sentence.
"""
from __future__ import annotations

import os

from safetensors import safe_open

from ..dataset.scan import DatasetError, scan_folder
from .config import TrainConfig
from .outputs import OutputPaths
from .state import StateError
from .trainer import check_resume


def request_problems(options: dict, cfg: TrainConfig | None, paths: OutputPaths) -> dict[str, str]:
    """{field: sentence} for what is wrong with the dataset folder, the model name's files and resume in `options`
    (`cfg` is their validated form, None when the options themselves are bad); {} when the run can start."""
    errors: dict[str, str] = {}
    data_dir = options.get("data_dir")
    if data_dir is None or (isinstance(data_dir, str) and not data_dir.strip()):
        errors["data_dir"] = "The dataset folder is required: a folder of sketches with .txt tag files."
    elif not isinstance(data_dir, str):
        errors["data_dir"] = f"The dataset folder must be given as text (its path), not {data_dir!r}."
    else:
        try:   # names and tag files only: no image is opened
            scan_folder(data_dir, probe=False).require_items()
        except DatasetError as e:
            errors["data_dir"] = str(e)
    if cfg is None:
        return errors
    lora = paths.lora_file(cfg.name)
    if os.path.exists(lora) and "storyboard_version" not in _metadata(lora):
        errors["name"] = (f"The LoRA folder already has a '{cfg.name}' that is not a storyboard model; choose "
                          "another model name so that file is not overwritten.")
    if cfg.resume:
        try:
            check_resume(paths.state_dir, cfg)
        except StateError as e:
            errors["resume"] = str(e)
    return errors


def _metadata(path: str) -> dict:
    try:
        with safe_open(path, framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception:   # not a safetensors file at all: not ours either
        return {}

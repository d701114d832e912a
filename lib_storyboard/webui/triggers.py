"""The shot triggers in txt2img/img2img: a prompt with <cu_trg>, <ms_trg> or <fs_trg> gets the chosen storyboard
model's token vectors and style LoRA, and the infotext records the model so that pasting it reproduces the image."""
import os
import re

from modules import devices

from .. import shots, storyboard_models
from . import patches, settings
from .capabilities import NO_EMBEDDING_DB, embedding_db
from .comments import problem
from .paths import list_models

_LORA_TAG = re.compile(r"<lora:([^:>]+)(?::[^>]*)?>", re.IGNORECASE)
_vector_cache: dict = {}


def choose_model(prompts: list[str], choice: str | None):
    """The storyboard model for this generation: the script's choice, else a storyboard LoRA the prompt already
    names, else the setting, else the newest."""
    width = _host_vector_width()
    ordered = list_models()          # newest first
    models = {m.name: m for m in ordered}
    if choice and choice != settings.FROM_SETTINGS:
        if choice not in models:
            return None, f"Storyboard model '{choice}' was not found."
        return _if_fits(models[choice], width)
    for p in prompts:
        for name in _LORA_TAG.findall(p or ""):
            if name in models:
                return _if_fits(models[name], width)
    setting = settings.get(settings.OPT_MODEL, "")
    if setting and setting != settings.LAST_TRAINED and setting in models:
        return _if_fits(models[setting], width)
    # The newest model trained on a checkpoint of this kind: one from a model with other token widths cannot apply.
    newest = next((m for m in ordered if width is None or _vector_width(m) in (width, None)), None)
    if newest is None and ordered:
        return None, (f"No storyboard model fits the loaded checkpoint (its token vectors are {width} wide), "
                      f"so <cu_trg>/<ms_trg>/<fs_trg> do nothing.")
    return newest, (None if newest else "No storyboard model is trained yet, so <cu_trg>/<ms_trg>/<fs_trg> do nothing.")


def _host_vector_width() -> int | None:
    w = getattr(embedding_db(), "expected_shape", -1)
    return w if isinstance(w, int) and w > 0 else None


def _vector_width(model) -> int | None:
    try:
        return int(next(iter(vectors_for(model).values())).shape[-1])
    except (OSError, ValueError, StopIteration):
        return None


def _if_fits(model, width):
    w = _vector_width(model)
    if width and w and w != width:
        return None, (f"Storyboard model '{model.name}' was trained on a checkpoint with {w}-wide token vectors; "
                      f"the loaded one needs {width}, so its triggers do nothing here.")
    return model, None


def vectors_for(model) -> dict:
    """The model's token vectors, read once per file version (the width check looks at several models per
    generation, so one cached entry per file, replaced when the file changes)."""
    mtime = os.path.getmtime(model.path)
    hit = _vector_cache.get(model.path)
    if hit is None or hit[0] != mtime:
        hit = _vector_cache[model.path] = (mtime, storyboard_models.token_vectors(model.path))
    return hit[1]


def add_lora_tag(prompt: str, name: str, weight: float) -> str:
    if any(n == name for n in _LORA_TAG.findall(prompt or "")):
        return prompt
    return f"{prompt} <lora:{name}:{weight:g}>"


def apply_triggers(p, choice: str | None) -> None:
    """In `process()`: pick the model, add its style LoRA to the prompts and record it in the infotext."""
    prompts = list(p.all_prompts or []) + list(getattr(p, "all_negative_prompts", []) or [])
    if not any(shots.find_triggers(x) for x in prompts):
        return
    untrained = getattr(p, "_storyboard_untrained", None)
    if untrained is not None:   # validation's chance level: the tokens as training starts them, no style
        p._storyboard_vectors = untrained
        p.extra_generation_params["Storyboard tokens"] = "untrained"
        return
    model, why = (None, NO_EMBEDDING_DB) if embedding_db() is None else choose_model(p.all_prompts, choice)
    if model is None:
        if why:
            problem(p, why)
        return
    p._storyboard_vectors = vectors_for(model)
    if settings.get(settings.OPT_APPLY_LORA, True):
        w = float(settings.get(settings.OPT_LORA_WEIGHT, 1.0))
        p.all_prompts = [add_lora_tag(x, model.name, w) if shots.find_triggers(x) else x for x in p.all_prompts]
        if getattr(p, "all_hr_prompts", None):
            p.all_hr_prompts = [add_lora_tag(x, model.name, w) if shots.find_triggers(x) else x
                                for x in p.all_hr_prompts]
    p.extra_generation_params["Storyboard model"] = model.name


def register_vectors(p) -> None:
    """In `process_batch()` (after the host activated LoRAs, which may unregister bundled names): make cu_trg,
    ms_trg and fs_trg mean this model's vectors for the coming conditioning."""
    vectors = getattr(p, "_storyboard_vectors", None)
    if not vectors:
        return
    for stem, vec in vectors.items():
        patches.register_token(stem, vec.to(devices.device, devices.dtype))
    patches.reset_condition_caches()


def unregister_vectors(p) -> None:
    if not getattr(p, "_storyboard_vectors", None):
        return
    for stem in shots.STEMS:
        patches.unregister_token(stem)

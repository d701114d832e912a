"""The resumable training state: tensors in safetensors, everything else in JSON (nothing is unpickled).

A state holds what an uninterrupted run would still have in memory — token vectors, LoRA weights, optimizer moments,
the step and data position, and every random generator — so a resumed run ends where the uninterrupted one does.
"""
from __future__ import annotations

import json
import os

import torch
from safetensors.torch import load_file, save

from ..formats.atomic import atomic_write_bytes, atomic_write_text

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
FORMAT = 1


class StateError(ValueError):
    pass


def save_state(folder: str, *, config: dict, step: int, tokens: dict, lora: dict, optimizer: torch.optim.Optimizer,
               rng: dict, extra: dict | None = None) -> list[str]:
    tensors: dict[str, torch.Tensor] = {}
    for stem, v in tokens.items():
        tensors[f"tokens.{stem}"] = v.detach().float().cpu().contiguous()
    for name, (down, up, _alpha) in lora.items():
        tensors[f"lora.{name}.down"] = down.contiguous()
        tensors[f"lora.{name}.up"] = up.contiguous()
    opt = optimizer.state_dict()
    for idx, st in opt["state"].items():
        for k, v in st.items():
            t = v if torch.is_tensor(v) else torch.tensor(v)
            tensors[f"optim.{idx}.{k}"] = t.detach().cpu().contiguous()
    for k, v in rng.items():
        if torch.is_tensor(v):
            tensors[f"rng.{k}"] = v.cpu().contiguous()
    meta = {
        "format": FORMAT, "step": step, "config": config,
        "lora_alpha": {n: a for n, (_, _, a) in lora.items()},
        "optim_groups": opt["param_groups"],
        "rng_py": {k: v for k, v in rng.items() if not torch.is_tensor(v)},
        **(extra or {}),
    }
    tpath, jpath = os.path.join(folder, STATE_TENSORS), os.path.join(folder, STATE_JSON)
    # Bytes written by Python (not safetensors' own file writer), so a full disk raises OSError like every other
    # write; the atomic writes create the folder, and remove it again if the write fails.
    atomic_write_bytes(tpath, save(tensors))
    # The JSON names the step last, so a crash between the two writes leaves a state that fails its step check.
    meta["tensor_step"] = step
    atomic_write_text(jpath, json.dumps(meta, indent=1))
    return [tpath, jpath]


def _read_meta(folder: str) -> tuple[str, dict]:
    """(the tensor file's path, the state's JSON) of the run saved in `folder`; StateError when there is none."""
    tpath, jpath = os.path.join(folder, STATE_TENSORS), os.path.join(folder, STATE_JSON)
    if not (os.path.isfile(tpath) and os.path.isfile(jpath)):
        raise StateError(f"There is no saved training state to resume in {folder}.")
    try:
        with open(jpath, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise StateError(f"The saved training state in {folder} is unreadable ({e}).") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise StateError("The saved training state was written by another version and cannot be resumed.")
    return tpath, meta


def saved_config(folder: str) -> dict:
    """The options of the run saved in `folder`, from its JSON alone (no tensor is read), for checks made before
    a resumed run starts. Raises StateError as `load_state` would when there is no readable state."""
    return dict(_read_meta(folder)[1].get("config") or {})


def load_state(folder: str) -> dict:
    tpath, meta = _read_meta(folder)
    try:
        tensors = load_file(tpath)
    except Exception as e:
        raise StateError(f"The saved training state in {folder} is unreadable ({e}).") from e
    tokens = {k[len("tokens."):]: v for k, v in tensors.items() if k.startswith("tokens.")}
    lora = {}
    for name, alpha in meta["lora_alpha"].items():
        lora[name] = (tensors[f"lora.{name}.down"], tensors[f"lora.{name}.up"], alpha)
    opt_state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, key = k.split(".", 2)
            opt_state.setdefault(int(idx), {})[key] = v
    rng = {k[len("rng."):]: v for k, v in tensors.items() if k.startswith("rng.")}
    rng.update(meta.get("rng_py", {}))
    return {"meta": meta, "step": meta["step"], "tokens": tokens, "lora": lora,
            "optimizer": {"state": opt_state, "param_groups": meta["optim_groups"]}, "rng": rng}

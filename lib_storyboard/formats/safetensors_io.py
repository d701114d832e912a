"""Reading safetensors files from user folders: the only format the product loads from them."""
from __future__ import annotations

import os

import torch


class FormatError(ValueError):
    """A file that is missing, not safetensors, or not what its reader expects."""


def read_safetensors(path: str, what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors on CPU, metadata) of a .safetensors file; anything else is refused with one sentence."""
    from safetensors import safe_open

    name = os.path.basename(path)
    if not path.lower().endswith(".safetensors"):
        raise FormatError(f"Only .safetensors {what} files are loaded; {name!r} is not one.")
    if not os.path.isfile(path):
        raise FormatError(f"The {what} file {path!r} does not exist.")
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types for truncated or foreign files
        raise FormatError(f"{name!r} is not a readable safetensors file ({e}).") from e

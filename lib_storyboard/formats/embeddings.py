"""Standalone textual-inversion embedding files, for the hosts' embeddings folders and other tools.

We write `.safetensors` with the single key `emb_params` (fp32 [n, d]): A1111 takes any single-key tensor file as an
embedding named by the file stem, and Forge, SD.Next, ComfyUI and diffusers load the same file. Metadata is
informational (the hosts read no checkpoint check from it).
"""
from __future__ import annotations

import os

import torch

from .atomic import atomic_write_bytes
from .safetensors_io import FormatError, read_safetensors

FORMAT_VERSION = "1"


class EmbeddingFormatError(FormatError):
    """An embedding that cannot be written or read."""


def _as_matrix(vec: torch.Tensor, what: str) -> torch.Tensor:
    vec = vec.detach().to("cpu", torch.float32)
    vec = vec.unsqueeze(0) if vec.dim() == 1 else vec
    if vec.dim() != 2 or vec.shape[0] < 1 or vec.shape[1] < 1:
        raise EmbeddingFormatError(f"{what} must be a [vectors, dim] tensor, got shape {tuple(vec.shape)}.")
    if not torch.isfinite(vec).all():
        raise EmbeddingFormatError(f"{what} contains NaN or infinite values; training diverged.")
    return vec.contiguous()


def save_embedding(path: str, vec: torch.Tensor, *, name: str, step: int, checkpoint_hash: str,
                   checkpoint_name: str) -> None:
    """Write `{"emb_params": fp32 [n, d]}` with string metadata, atomically. The hosts name it by the file stem."""
    from safetensors.torch import save

    if not path.endswith(".safetensors"):
        raise EmbeddingFormatError(f"Embeddings are written as .safetensors; {os.path.basename(path)!r} is not.")
    mat = _as_matrix(vec, f"Embedding {name}")
    meta = {
        "name": str(name),
        "step": str(int(step)),
        "sd_checkpoint": str(checkpoint_hash or ""),
        "sd_checkpoint_name": str(checkpoint_name or ""),
        "vectors": str(mat.shape[0]),
        "dim": str(mat.shape[1]),
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "stable-diffusion-v1/textual-inversion",
        "modelspec.title": str(name),
        "storyboard_format_version": FORMAT_VERSION,
    }
    atomic_write_bytes(path, save({"emb_params": mat}, metadata=meta))


def load_embedding(path: str) -> torch.Tensor:
    """The [n, d] fp32 vectors of a safetensors embedding: one tensor under any key (e.g. `emb_params`), or the
    classic `string_to_param.*` entry."""
    tensors, _ = read_safetensors(path, "embedding")
    base = os.path.basename(path)
    if "clip_l" in tensors and "clip_g" in tensors:
        raise EmbeddingFormatError(f"{base!r} is an SDXL embedding; only SD1 embeddings are supported.")
    params = [k for k in tensors if k.startswith("string_to_param.")]
    if len(params) == 1:
        return _as_matrix(tensors[params[0]], base)
    if len(tensors) == 1:
        return _as_matrix(next(iter(tensors.values())), base)
    raise EmbeddingFormatError(f"{base!r} holds {len(tensors)} tensors; an embedding file holds exactly one.")

"""The one precision decision: what forward passes run in and whether gradients are scaled, for every adapter.

Trainable tensors (token vectors, LoRA weights) are fp32 whatever is decided; only the frozen model's compute is
lowered. fp16 has a narrow range, so wherever fp16 tensors are in the graph the loss is scaled (GradScaler) or the
small token gradients underflow to zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .adapter import UnsupportedModel

_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


@dataclass(frozen=True)
class Precision:
    autocast: torch.dtype | None     # torch.autocast dtype for forward passes; None: none, compute in fp32
    scaler: bool                     # scale the loss with a GradScaler


def decide_precision(requested: str, device_type: str, bf16_supported: bool, weight_dtype: torch.dtype) -> Precision:
    """`requested` is TrainConfig.precision (auto | fp32 | fp16 | bf16); raises UnsupportedModel (one sentence)
    for combinations that cannot train correctly."""
    weights = _NAMES.get(weight_dtype)
    if weights is None:
        raise UnsupportedModel(f"The model's weights are {weight_dtype}, which cannot be trained; load them in fp16 "
                               "or fp32 (in A1111, turn off FP8 weight in Settings → Optimizations).")
    if device_type != "cuda":
        # torch has no GradScaler for these devices, so half weights would train with unguarded fp16 gradients.
        if weight_dtype != torch.float32:
            raise UnsupportedModel(f"Training on {device_type.upper()} needs fp32 weights, but the model's are "
                                   f"{weights}; load it in fp32 (in A1111, start with --no-half).")
        return Precision(None, False)
    if requested == "fp32":
        if weight_dtype != torch.float32:
            raise UnsupportedModel(f"Precision fp32 needs fp32 weights, but the model's are {weights}; load it in "
                                   "fp32 (in A1111, start with --no-half) or choose precision auto.")
        return Precision(None, False)
    if requested == "bf16" and not bf16_supported:
        raise UnsupportedModel("This GPU does not support bf16; choose precision auto or fp16.")
    if requested == "auto":
        # Follow the weights: fp32 weights mean the user chose full precision (e.g. --no-half where fp16 gives
        # NaNs); half weights train in their own dtype, which is what inference uses.
        if weight_dtype == torch.float32:
            return Precision(None, False)
        dtype = weight_dtype
    else:
        dtype = torch.float16 if requested == "fp16" else torch.bfloat16
    # Under bf16 autocast, fp16 weights still leave fp16 tensors (embedding lookups, norms' inputs) in the graph.
    return Precision(dtype, torch.float16 in (dtype, weight_dtype))


def load_dtype(requested: str, device_type: str) -> torch.dtype:
    """The weight dtype for a loader that can choose (the standalone trainer): one that decide_precision accepts."""
    if device_type != "cuda" or requested == "fp32":
        return torch.float32
    return torch.bfloat16 if requested == "bf16" else torch.float16

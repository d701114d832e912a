"""LoRA attached by forward hooks, not by replacing modules.

Hooks leave the model's module tree untouched, so the host keeps finding its own modules (A1111's Lora extension
keys its mapping on the original module objects and patches `forward` globally; hooks still fire), and removing the
hooks restores the model exactly.
"""
from __future__ import annotations

import contextlib
import math

import torch
from torch import nn


class LoraLayerModule(nn.Module):
    def __init__(self, base: nn.Module, rank: int, alpha: float, dropout: float):
        super().__init__()
        if isinstance(base, nn.Linear):
            self.down = nn.Linear(base.in_features, rank, bias=False)
            self.up = nn.Linear(rank, base.out_features, bias=False)
        elif isinstance(base, nn.Conv2d) and base.kernel_size == (1, 1):
            self.down = nn.Conv2d(base.in_channels, rank, 1, bias=False)
            self.up = nn.Conv2d(rank, base.out_channels, 1, bias=False)
        else:
            raise TypeError(f"LoRA supports Linear and 1x1 Conv2d layers, not {type(base).__name__}.")
        self.rank = rank
        self.alpha = float(alpha)
        self.scale = self.alpha / rank
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def reset(self, generator: torch.Generator) -> None:
        # Kaiming-uniform down (as nn.Linear does) and zero up: the model starts exactly at the base.
        fan_in = self.down.weight[0].numel()
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            self.down.weight.uniform_(-bound, bound, generator=generator)
            self.up.weight.zero_()

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(self.dropout(x))) * self.scale


class LoraSet(nn.Module):
    """The LoRA layers for a list of (kohya name, target module); `attach()` hooks them in, `detach()` removes."""

    def __init__(self, targets: list[tuple[str, nn.Module]], rank: int, alpha: float, dropout: float = 0.0,
                 seed: int = 0):
        super().__init__()
        if not targets:
            raise ValueError("The model has no layers LoRA can attach to.")
        self.names = [n for n, _ in targets]
        self._targets = [m for _, m in targets]
        self.layers = nn.ModuleList(LoraLayerModule(m, rank, alpha, dropout) for m in self._targets)
        g = torch.Generator().manual_seed(seed)
        for layer in self.layers:
            layer.reset(g)
        self._handles = []

    def attach(self) -> None:
        self.detach()
        for target, layer in zip(self._targets, self.layers):
            self._handles.append(target.register_forward_hook(_hook(layer)))

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def group(self, prefix: str) -> list[nn.Parameter]:
        return [p for n, layer in zip(self.names, self.layers) if n.startswith(prefix) for p in layer.parameters()]

    def weights(self) -> dict[str, tuple[torch.Tensor, torch.Tensor, float]]:
        """kohya name → (down, up, alpha), detached fp32 CPU copies."""
        return {n: (l.down.weight.detach().float().cpu().clone(), l.up.weight.detach().float().cpu().clone(), l.alpha)
                for n, l in zip(self.names, self.layers)}

    def load_weights(self, weights: dict[str, tuple[torch.Tensor, torch.Tensor, float]]) -> None:
        missing = [n for n in self.names if n not in weights]
        if missing:
            raise ValueError(f"The saved LoRA lacks {len(missing)} of this model's layers (e.g. {missing[0]}).")
        with torch.no_grad():
            for n, layer in zip(self.names, self.layers):
                down, up, _ = weights[n]
                layer.down.weight.copy_(down.reshape(layer.down.weight.shape))
                layer.up.weight.copy_(up.reshape(layer.up.weight.shape))


def _hook(layer: LoraLayerModule):
    def hook(module, args, output):
        x = args[0]
        d = layer.delta(x.to(layer.down.weight.dtype) if not torch.is_autocast_enabled() else x)
        return output + d.to(output.dtype)
    return hook


@contextlib.contextmanager
def lora_attached(adapter, lora_file: str):
    """The LoRA layers of a written storyboard file hooked into the adapter's model for the duration."""
    from ..formats.lora_file import load_lora   # here: formats reads files, this module only builds layers

    layers, _, _ = load_lora(lora_file)
    te = any(n.startswith("lora_te") for n in layers)
    ranks = {l.down.shape[0] for l in layers.values()}
    alphas = {l.alpha for l in layers.values()}
    lora = LoraSet(adapter.lora_targets(te), ranks.pop(), alphas.pop()).to(adapter.device)
    lora.load_weights({n: (l.down, l.up, l.alpha) for n, l in layers.items()})
    lora.attach()
    try:
        yield lora
    finally:
        lora.detach()

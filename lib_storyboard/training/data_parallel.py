"""Data parallelism for the standalone trainer, under `accelerate launch` (or any launcher that sets the
torch.distributed environment: WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT).

Every process runs the same loop with the same seeds, so the batch order, captions, noise and timesteps of each
global batch are drawn identically everywhere; each process then computes the loss of its own contiguous share
of the batch, and the gradients are summed across processes before the optimizer step. The per-sample losses are
divided by the *global* batch length, so the summed gradient is the gradient of the one-process batch mean and N
processes at batch B take the steps one process takes at batch B. Only the main process reports and writes files.
"""
from __future__ import annotations

import os

import torch


class DataParallel:
    def __init__(self, rank: int, world: int, device: torch.device):
        self.rank, self.world, self.device = rank, world, device

    @classmethod
    def from_environment(cls, cpu: bool) -> DataParallel | None:
        """The process group a launcher prepared (gloo on CPU, nccl on CUDA, chosen by accelerate), or None when
        this is a single process: then nothing here is imported or run."""
        if int(os.environ.get("WORLD_SIZE", "1")) < 2:
            return None
        from accelerate import PartialState

        state = PartialState(cpu=cpu)
        return cls(state.process_index, state.num_processes, state.device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> slice:
        """This process's positions in a global batch of n (contiguous; shares differ by at most one, and some
        are empty when n < world)."""
        return slice(self.rank * n // self.world, (self.rank + 1) * n // self.world)

    def sum_gradients(self, params: list[torch.nn.Parameter], loss: torch.Tensor) -> torch.Tensor:
        """Sum `loss` and every parameter's gradient over the processes, in one collective. A parameter no
        process gave a gradient (a token absent from the whole batch) keeps `grad = None`, as in one process, so
        AdamW skips it there too; one that some shares did not reach counts zero from them."""
        flat = [loss.detach().float().reshape(1).to(self.device),
                torch.tensor([float(p.grad is not None) for p in params], device=self.device)]
        flat += [(p.grad if p.grad is not None else torch.zeros_like(p)).float().reshape(-1) for p in params]
        buf = torch.cat(flat)
        torch.distributed.all_reduce(buf)
        had = buf[1:1 + len(params)].tolist()
        pos = 1 + len(params)
        for p, h in zip(params, had):
            n = p.numel()
            p.grad = buf[pos:pos + n].view_as(p).to(p.dtype) if h else None
            pos += n
        return buf[0]

    def barrier(self) -> None:
        torch.distributed.barrier()

    def close(self) -> None:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

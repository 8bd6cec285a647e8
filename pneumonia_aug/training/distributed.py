"""Data-parallel training under `torchrun` (DistributedDataParallel), and a no-op without it.

`torchrun --nproc_per_node=N -m pneumonia_aug.cli train-classifier ...` starts N processes with
RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set; `process_group` joins them (NCCL
on CUDA, gloo on CPU). Started any other way, `process_group` yields the one-process context,
whose methods hand their arguments back untouched: the single-process path runs no collective.

The conventions both training loops share:
- `batch_size` stays the *global* batch (the paper's hyperparameter, with the same lr): each of
  N processes takes `batch_size / N` images a step and DDP averages the gradients.
- Every rank draws the same epoch permutation from the same seed, pads it as
  `DistributedSampler` does, so all ranks take the same number of steps, and takes every N-th
  index; the union of the ranks' k-th batches is the k-th global batch.
- Draws that must differ between ranks (augmentation, noise, dropout) come from per-rank seeds.
- Only rank 0 talks to MLflow; the stages broadcast to the others what they need.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from pneumonia_aug.errors import PneumoniaAugError

# Rank 0 alone decodes new images, evaluates, samples and uploads while the others wait in
# the next collective; the default timeouts (10 min NCCL, 30 min gloo) are too short for that.
COLLECTIVE_TIMEOUT = timedelta(hours=1)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def precision(device: torch.device, bf16: bool | None = None) -> str:
    """The training precision, as runs record it: `bf16` (autocast) on CUDA (`bf16=None`), else
    `fp32`; or as asked (the memory estimate runs the CUDA precision on the CPU)."""
    return "bf16" if (device.type == "cuda" if bf16 is None else bf16) else "fp32"


def autocast(device: torch.device, bf16: bool | None = None):
    """Autocast to the training precision (`precision`)."""
    return torch.autocast(device.type, dtype=torch.bfloat16,
                          enabled=precision(device, bf16) == "bf16")


def derived_seed(seed: int, rank: int) -> int:
    """A seed of its own for each rank, reproducible from the run's seed."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP wrapper (for evaluation, checkpoints, calls without a gradient
    sync), or the model itself."""
    return model.module if isinstance(model, DistributedDataParallel) else model


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """Each process drives the GPU of its local rank."""
        if self.enabled and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def local_batch(self, batch_size: int) -> int:
        if batch_size % self.world_size:
            raise PneumoniaAugError(
                f"batch_size {batch_size} is the global batch and must split evenly over the "
                f"{self.world_size} processes: use a multiple of {self.world_size}")
        return batch_size // self.world_size

    def rank_generator(self, shared: torch.Generator, seed: int) -> torch.Generator:
        """A generator for the draws that must differ between ranks; one process keeps drawing
        them from `shared`, as it always did, so its numbers do not change."""
        if not self.enabled:
            return shared
        return torch.Generator(device=shared.device).manual_seed(derived_seed(seed, self.rank))

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's part of an epoch permutation (`DistributedSampler` without shuffling)."""
        if not self.enabled:
            return order
        padded = math.ceil(len(order) / self.world_size) * self.world_size
        order = order.repeat(math.ceil(padded / len(order)))[:padded]
        return order[self.rank :: self.world_size]

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if not self.enabled:
            return model
        on_gpu = next(model.parameters()).is_cuda
        return DistributedDataParallel(model, device_ids=[self.local_rank] if on_gpu else None)

    def total(self, sums: torch.Tensor, count: int) -> tuple[torch.Tensor, int]:
        """`sums` and `count` added over all ranks in one all_reduce (global means for the
        logs); unchanged for one process."""
        if not self.enabled:
            return sums, count
        packed = torch.cat([sums.detach().reshape(-1).double(),
                            torch.tensor([count], dtype=torch.float64, device=sums.device)])
        dist.all_reduce(packed)
        return packed[:-1].to(sums.dtype).reshape(sums.shape), int(packed[-1].item())

    def broadcast(self, obj):
        """Rank 0's `obj` on every rank (others pass anything, e.g. None)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


SINGLE = DistContext()


@contextlib.contextmanager
def process_group(device_name: str = "auto") -> Iterator[DistContext]:
    """Join the torchrun job this process belongs to, or yield `SINGLE` outside torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 or "RANK" not in os.environ:
        yield SINGLE
        return
    ctx = DistContext(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    cuda = pick_device(device_name).type == "cuda"
    if cuda:
        torch.cuda.set_device(ctx.local_rank)  # NCCL and broadcast_object_list use it
    dist.init_process_group("nccl" if cuda else "gloo", timeout=COLLECTIVE_TIMEOUT)
    try:
        yield ctx
    finally:
        dist.destroy_process_group()

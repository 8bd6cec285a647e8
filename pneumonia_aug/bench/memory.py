"""Peak memory of a training step, counted without running it and without a GPU.

Under PyTorch's `FakeTensorMode` every tensor has its shape, dtype and device but no data, so a
256 px step at batch 128 costs a little CPU time and no memory. `LiveStorage` (a dispatch mode)
adds the bytes of each new storage when an operation creates it and takes them off when
Python frees it, the same bookkeeping as `torch.distributed._tools.mem_tracker.MemTracker`
(which needs a CUDA context and refuses a module called twice in one step, as D is in a GAN
step). The peak is what PyTorch's allocator would have to hold: compare it with
`torch.cuda.max_memory_allocated`. A real GPU adds block rounding and fragmentation of the
caching allocator, cuDNN workspaces and the CUDA context, hence the margin below a card's
size that `bench` applies.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class LiveStorage(TorchDispatchMode):
    """Bytes of the tensor storages alive, and their peak, while the mode is active."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._tracked: dict[int, weakref.ref] = {}

    def _freed(self, key: int, nbytes: int) -> None:
        self._tracked.pop(key, None)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()  # views share it: counted once
            key = id(storage)
            if key in self._tracked:
                continue
            nbytes = storage.nbytes()
            self._tracked[key] = weakref.ref(storage, lambda _, k=key, n=nbytes: self._freed(k, n))
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        return out


@dataclass
class StepMemory:
    state_bytes: int  # alive between steps: weights, optimizer state, the step's fixed inputs
    peak_bytes: int  # the most alive at once, state included


def step_memory(build: Callable[[torch.device], Callable[[], None]], steps: int = 2,
                fake: bool = True) -> StepMemory:
    """Build a step on the CPU (`build(device) -> step`) and run it `steps` times, counting.

    `fake=False` runs it for real, on real CPU tensors (the tests compare both ways)."""
    with FakeTensorMode() if fake else contextlib.nullcontext(), LiveStorage() as counter:
        step = build(torch.device("cpu"))
        for _ in range(steps):
            step()
        return StepMemory(state_bytes=counter.live, peak_bytes=counter.peak)

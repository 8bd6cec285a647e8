"""Memory of the 256 px models at the paper's batch sizes: estimated anywhere, measured on a GPU.

The estimate runs each bare step under FakeTensorMode on the CPU with bf16 autocast, the
precision the project trains with on a GPU (`bench/memory.py`), so it needs no GPU and takes
seconds. On CUDA the same steps also run for real and PyTorch's allocator reports its
peaks, so a GPU run shows how far the estimate is off. `report.render_memory` renders the
rows.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

import torch

from pneumonia_aug.bench.memory import step_memory
from pneumonia_aug.bench.report import ESTIMATE_SLACK, FIT_GIB, PROBE_SIZE
from pneumonia_aug.bench.variants import classifier_bare, gan_bare
from pneumonia_aug.config import AUTHORS_GAN_BATCH_SIZE, PAPER_BATCH_SIZE

GIB = 2**30

PROBES = (  # (label, kind, batch, bf16): the paper's batch sizes
    ("classifier, project step (bf16)", "classifier", PAPER_BATCH_SIZE, True),
    ("classifier, fp32 (paper precision)", "classifier", PAPER_BATCH_SIZE, False),
    ("DCGAN D + G step (bf16)", "dcgan", AUTHORS_GAN_BATCH_SIZE, True),
    ("CGAN D + G step (bf16)", "cgan", AUTHORS_GAN_BATCH_SIZE, True),
)


def _builder(kind: str, batch: int, bf16: bool) -> Callable[[torch.device], Callable[[], None]]:
    if kind == "classifier":
        return lambda device: classifier_bare(device, PROBE_SIZE, batch, bf16=bf16)
    return lambda device: gan_bare(device, PROBE_SIZE, batch, model=kind, bf16=bf16)


def estimate() -> list[dict]:
    """Estimated peak (GiB) of two steps of each probe, counted on fake tensors."""
    rows = []
    for label, kind, batch, bf16 in PROBES:
        counted = step_memory(_builder(kind, batch, bf16))
        peak = counted.peak_bytes / GIB
        rows.append({"model": label, "batch": batch, "estimated_gib": peak,
                     "fits_24gb": peak * ESTIMATE_SLACK <= FIT_GIB})
    return rows


def measure(device: torch.device, rows: list[dict]) -> None:
    """Add the allocator's peaks of three real steps of each probe, alone, to `rows` (CUDA)."""
    for row, (_, kind, batch, bf16) in zip(rows, PROBES, strict=True):
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device), torch.cuda.memory_reserved(device)
        step = _builder(kind, batch, bf16)(device)
        for _ in range(3):
            step()
        torch.cuda.synchronize(device)
        row["allocated_gib"] = (torch.cuda.max_memory_allocated(device) - base[0]) / GIB
        row["reserved_gib"] = (torch.cuda.max_memory_reserved(device) - base[1]) / GIB
        row["fits_24gb"] = row["reserved_gib"] <= FIT_GIB
        del step
    gc.collect()
    torch.cuda.empty_cache()


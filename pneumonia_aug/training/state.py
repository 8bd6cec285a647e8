"""What a checkpoint needs beyond weights and optimizers for an exact continuation: the state
of every random stream the next epoch draws from, written so that a kill never tears it.

Random streams: the shared batch-order generator (the same on every rank), and per rank its
own draws (augmentation, noise, DiffAugment; one process draws these from the batch-order
generator) and torch's global RNG (dropout). A resumed run restores all of them, so it makes
the same draws as a run that was never interrupted.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.training.distributed import DistContext


def capture_rng(order: torch.Generator, draws: torch.Generator, dist: DistContext) -> dict:
    """The random state after an epoch; a collective under DDP (every rank must call it)."""
    cuda = draws.device.type == "cuda"
    mine = {"draws": draws.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(draws.device) if cuda else None}
    return {"order": order.get_state(), "ranks": dist.gather(mine),
            "device_type": draws.device.type}


def restore_rng(rng: dict, order: torch.Generator, draws: torch.Generator,
                dist: DistContext) -> None:
    saved_ranks = len(rng["ranks"])
    if saved_ranks != dist.world_size:
        launch = (f"torchrun --nproc_per_node={saved_ranks} -m pneumonia_aug.cli"
                  if saved_ranks > 1 else "pneumonia-aug (one process)")
        raise PneumoniaAugError(
            f"the checkpoint was written by {saved_ranks} process(es), this job has "
            f"{dist.world_size}: resume with `{launch} ... --resume RUN_ID`")
    if rng["device_type"] != draws.device.type:
        raise PneumoniaAugError(
            f"the checkpoint was written on {rng['device_type']}, this job runs on "
            f"{draws.device.type}: resume on the same kind of device (option --device)")
    mine = rng["ranks"][dist.rank]
    draws.set_state(mine["draws"])
    order.set_state(rng["order"])  # after `draws`: for one process they are the same generator
    torch.set_rng_state(mine["torch"])
    if mine["cuda"] is not None:
        torch.cuda.set_rng_state(mine["cuda"], draws.device)


def atomic_save(obj: dict, path: Path) -> None:
    """Write beside the target, then rename: an interrupted save never leaves a torn file."""
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)

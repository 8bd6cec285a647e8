"""The learning rate for a batch size: the batch sizes the paper's learning rates were set for,
and the rules that scale them to another batch size."""

from __future__ import annotations

import math

PAPER_BATCH_SIZE = 16  # CheXNet's batch size (paper, section 3.3)
AUTHORS_GAN_BATCH_SIZE = 128  # the authors' GAN code
LR_SCALING_RULES = ("none", "linear", "sqrt")


def scale_lr(lr: float, batch_size: int, reference_batch: int, rule: str) -> float:
    """The learning rate for `batch_size`, from `lr` set for `reference_batch` (the paper's).

    none: `lr` as given (the paper's runs, or an lr tuned by hand); linear: times
    batch / reference (Goyal et al. 2017); sqrt: times sqrt(batch / reference), gentler, often
    preferred with Adam.
    """
    ratio = batch_size / reference_batch
    return {"none": lr, "linear": lr * ratio, "sqrt": lr * math.sqrt(ratio)}[rule]

"""`pneumonia-aug bench train`: time the five variants on one device in interleaved rounds.

Each variant is timed over the same number of images after its warm-up. The timed steps are
split into rounds run round-robin (variant A, B, C, ... then again), so a machine that slows
down part-way slows every variant alike. It prints images/s, the ratios against the targets
and the memory of the 256 px models, then writes what it measured as its device's record
(`measured`: the figures the study's estimate reads) and, rendered from that record, its
device's section of docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from pneumonia_aug import measured
from pneumonia_aug.bench import memory_probe
from pneumonia_aug.bench.report import PROBE_SIZE, BenchResult, Variant, publish, render
from pneumonia_aug.bench.variants import (
    classifier_bare,
    classifier_loop,
    gan_bare,
    gan_loop,
    load_pools,
    paper_loop,
)
from pneumonia_aug.config import PAPER_BATCH_SIZE
from pneumonia_aug.data.kermany import default_data_dir, resolve_data_dir
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.machine import cpu_model
from pneumonia_aug.models.sizes import gan_stages
from pneumonia_aug.training.distributed import pick_device

log = logging.getLogger(__name__)
MIB = 2**20


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"CPU: {cpu_model()} ({threads} thread{'s' if threads > 1 else ''})"


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB else


def prepare(key: str, batch: int, build: Callable, device, warmup: int) -> Variant:
    """Build a variant and warm it up; on CUDA, record the memory it added at its peak."""
    log.info("bench: preparing %s", key)
    before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    variant = Variant(key, batch, build())
    for _ in range(warmup):
        variant.step()
    _sync(device)
    if device.type == "cuda":
        variant.peak_mib = (torch.cuda.max_memory_allocated(device) - before) / MIB
    return variant


def time_round_robin(variants: list[Variant], images: int, rounds: int, device) -> None:
    """Each variant runs ceil(images / batch) steps, split into `rounds` interleaved chunks."""
    plan = [math.ceil(images / v.batch) for v in variants]
    for r in range(rounds):
        for v, steps in zip(variants, plan, strict=True):
            n = steps * (r + 1) // rounds - steps * r // rounds
            _sync(device)
            start = time.perf_counter()
            for _ in range(n):
                v.step()
            _sync(device)
            v.seconds += time.perf_counter() - start
            v.images += n * v.batch


def run_bench(data_dir: str | None = None, image_size: int | None = None,
              batch_size: int | None = None, steps: int | None = None,
              warmup: int | None = None, device: str = "auto",
              output: str | Path | None = "docs/benchmarks.md", max_images: int = 1024,
              rounds: int = 4, threads: int = 0, memory: bool = True,
              figures: str | Path | None = None) -> BenchResult:
    """Measure the five variants on one device; write its record into `figures` (None or "":
    don't), then its section of `output` (None or "": don't). `threads`: CPU intra-op threads
    for this run (0 = leave PyTorch's setting); `memory`: add the memory table of the 256 px
    models."""
    with _threads(threads):
        result = _run_bench(data_dir, image_size, batch_size, steps, warmup, device,
                            max_images, rounds, memory)
    record = result.record()
    result.markdown = render(record)
    publish([record], Path(figures) if figures else None, Path(output) if output else None)
    return result


@contextlib.contextmanager
def _threads(n: int):
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_bench(data_dir, image_size, batch_size, steps, warmup, device, max_images, rounds,
               memory) -> BenchResult:
    dev = pick_device(device)
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise PneumoniaAugError(f"--device {device}: no CUDA GPU is visible to PyTorch")
    size = image_size or (256 if cuda else 64)
    batch = batch_size or (128 if cuda else 16)
    steps = steps or (50 if cuda else 20)
    warmup = (10 if cuda else 2) if warmup is None else warmup
    _check(size, batch, steps, rounds)
    rounds = min(rounds, steps)
    torch.manual_seed(0)
    data_dir = str(default_data_dir(data_dir))
    classifier_pool, gan_pool = load_pools(data_dir, size, max_images)
    builders = [
        ("classifier bare step", batch, lambda: classifier_bare(dev, size, batch)),
        (measured.CLASSIFIER_LOOP, batch, lambda: classifier_loop(dev, classifier_pool, batch)),
        ("paper-style loop", PAPER_BATCH_SIZE, lambda: paper_loop(dev, classifier_pool, size)),
        ("GAN bare step", batch, lambda: gan_bare(dev, size, batch)),
        (measured.GAN_LOOP, batch, lambda: gan_loop(dev, gan_pool, size, batch)),
    ]
    variants = [prepare(key, b, build, dev, warmup) for key, b, build in builders]
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    log.info("bench: timing %d images per variant in %d rounds", steps * batch, rounds)
    time_round_robin(variants, steps * batch, rounds, dev)
    by_key = {v.key: v for v in variants}
    peak = _peak_mib(dev, variants)
    for v in variants:
        v.step = None  # drop the models before the memory probe
    rows = []
    if memory:
        log.info("bench: memory of the %d px models at the paper's batch sizes", PROBE_SIZE)
        rows = memory_probe.estimate()
        if cuda:
            memory_probe.measure(dev, rows)
    settings = _settings(dev, data_dir, size, batch, steps, warmup, rounds,
                         len(classifier_pool.images), len(gan_pool.images))
    return BenchResult(device_name(dev), settings, by_key, peak, rows)


def _check(size: int, batch: int, steps: int, rounds: int) -> None:
    try:
        gan_stages(size)
    except ValueError as exc:
        raise PneumoniaAugError(f"--image-size: {exc}") from exc
    if batch < 2 or steps < 1 or rounds < 1:
        raise PneumoniaAugError("--batch-size must be >= 2 (batch norm), --steps and rounds >= 1")


def _peak_mib(dev, variants: list[Variant]) -> float:
    if dev.type != "cuda":
        return _rss_mib()
    timed = torch.cuda.max_memory_allocated(dev) / MIB  # all variants resident, timed phase
    return max([timed] + [v.peak_mib or 0.0 for v in variants])


def _settings(dev, data_dir, size, batch, steps, warmup, rounds, n_cls, n_gan) -> dict:
    command = (f"pneumonia-aug bench train --device {dev.type} --image-size {size}"
               f" --batch-size {batch} --steps {steps} --warmup {warmup}"
               + ("" if dev.type == "cuda" else f" --threads {torch.get_num_threads()}"))
    return {"date": datetime.date.today().isoformat(), "torch": torch.__version__,
            "cuda": torch.version.cuda if dev.type == "cuda" else "", "command": command,
            "image_size": size, "batch_size": batch, "steps": steps, "warmup": warmup,
            "threads": 1 if dev.type == "cuda" else torch.get_num_threads(),
            "rounds": rounds, "images": steps * batch, "classifier_pool": n_cls,
            "gan_pool": n_gan, "data": Path(resolve_data_dir(data_dir)).name}

"""`pneumonia-aug bench`: training throughput of the project's loops, on one device, in one run.

Five variants, each timed over the same number of images after its warm-up. The timed steps
are split into rounds run round-robin (variant A, B, C, ... then again), so a machine that
slows down part-way slows every variant alike:

- classifier bare step: CheXNet forward + backward + Adam on random tensors already on the
  device, with the project's precision (bf16 autocast + channels-last on CUDA): the ceiling;
- classifier loop: the inner step of `training.classifier.train_classifier`, built from its own
  helpers, on uint8 images decoded once through the project's cache;
- paper-style loop: each step opens 16 JPEG files with PIL and applies torchvision's
  RandomResizedCrop + flip + ToTensor + Normalize per image; no workers, fp32, batch 16;
- GAN bare step: the authors' DCGAN, one D step and one G step on random tensors;
- GAN loop: `training.gan._train_step` on cached real NORMAL training images.

It prints images/s, the ratios against the targets, peak memory, and (on CUDA) a memory probe
of the paper's batch sizes at 256 px; then writes its device's section of docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import logging
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

from pneumonia_aug.config import ClassifierConfig
from pneumonia_aug.data.cache import ImageCache
from pneumonia_aug.data.dataset import Subset
from pneumonia_aug.data.kermany import DATA_DIR_ENV, POSITIVE, index_kermany, resolve_data_dir
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.models.chexnet import IMAGENET_MEAN, IMAGENET_STD, CheXNet
from pneumonia_aug.models.gan import build_gan, gan_stages
from pneumonia_aug.training.classifier import _as_tensor, _autocast, pick_device, train_step
from pneumonia_aug.training.gan import GANConfig, _to_device, _train_step

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]
PAPER_BATCH = 16  # CheXNet's batch size (paper, section 3.3)
GAN_PAPER_BATCH = 128  # the authors' GAN batch size
PROBE_SIZE = 256  # the paper's working size
FIT_GIB = 22.0  # a 24 GB card, less room for the CUDA context and cuDNN workspaces
MIB = 2**20
TARGETS = {  # ratio -> minimum, on a GPU at 256 px, batch 128
    "classifier loop / classifier bare step": 0.9,
    "classifier loop / paper-style loop": 8.0,
    "GAN loop / GAN bare step": 0.9,
}
GPU_COMMAND = "pneumonia-aug bench --device cuda --image-size 256 --batch-size 128"
CPU_COMMAND = ("python -m pneumonia_aug.bench --device cpu --image-size 64 --batch-size 16"
               " --threads 1")
HEADER = f"""# Training throughput benchmarks

Written by `pneumonia-aug bench` (`pneumonia_aug/bench.py`). Each run replaces the section of
its own device and keeps the others. Run it from the repository root:

- GPU: `{GPU_COMMAND}`
- CPU: `{CPU_COMMAND}`

Five variants run on the same device, each over the same number of images (rounded up to whole
batches of 16 for the paper-style loop) after a warm-up, in interleaved rounds:
**classifier bare step** (CheXNet forward + backward + Adam on random tensors already on the
device, bf16 + channels-last on CUDA: the ceiling), **classifier loop** (the project's step:
cached uint8 images on the device, indexed, cropped + flipped on the device, as in
`training/classifier.py`), **paper-style loop** (PIL decode of the JPEG files every step,
torchvision RandomResizedCrop + flip + ToTensor + Normalize per image, no DataLoader workers,
fp32, batch 16, `loss.item()` each step), **GAN bare step** (the authors' DCGAN, D + G step on
random tensors) and **GAN loop** (`training/gan.py` `_train_step` on cached real NORMAL images).

Targets, on a GPU at 256 px and batch 128: classifier loop >= 90% of its bare step and >= 8x the
paper-style loop; GAN loop >= 90% of its bare step. The memory probe (CUDA only) runs the 256 px
models at the paper's batch sizes (classifier 16, GANs 128); each must fit a 24 GB card, read
here as a peak reserved by PyTorch of at most {FIT_GIB:.0f} GiB. The probe counts the model step
only: the project also keeps the decoded training images on the GPU (5216 x 256 x 256 uint8,
about 0.33 GiB for the whole Kermany training split).

Caveat: `../shared/data/chest_xray` is a 224 px copy of the dataset. Decoding a full-size
radiograph costs far more (about 10 ms a core), so against the original files the paper-style
loop is slower than measured here and the loop / paper-style ratio is an underestimate.
On a CPU the model step dominates every variant (a 224 px JPEG decodes in about 1 ms), so the
ratios there sit near 1: the targets are for GPUs. CPU figures come from shared 2-core
machines: compare ratios within one run, not across runs (they vary by ~10%). There, use
`--threads 1`: with two intra-op threads on two busy cores the threads stall each other and a
step runs about 5x slower and far more erratically.
"""


@dataclass
class Pool:
    """Training images for the project loops (decoded by the cache) and their files."""

    images: np.ndarray  # (N, S, S) uint8
    labels: np.ndarray  # (N,) float32, 1 = PNEUMONIA
    paths: list[str]


@dataclass
class Variant:
    key: str
    batch: int
    step: Callable[[], None]
    seconds: float = 0.0
    images: int = 0
    peak_mib: float | None = None

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


@dataclass
class BenchResult:
    device: str  # the section heading, e.g. "NVIDIA H200" or "CPU: ... (2 threads)"
    settings: dict
    variants: dict[str, Variant]
    ratios: dict[str, float]
    peak_mib: float
    probe: list[dict] = field(default_factory=list)
    markdown: str = ""


def default_data_dir() -> str | None:
    """$PNEUMONIA_AUG_DATA_DIR, else ../shared/data/chest_xray beside the clone when present."""
    if os.environ.get(DATA_DIR_ENV):
        return os.environ[DATA_DIR_ENV]
    for candidate in (REPO.parent / "shared/data/chest_xray", Path("../shared/data/chest_xray")):
        if (candidate / "train").is_dir():
            return str(candidate)
    return None  # resolve_data_dir falls back to data/chest_xray or explains what is missing


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"CPU: {model} ({threads} thread{'s' if threads > 1 else ''})"


def load_pools(data_dir: str | None, size: int, max_images: int) -> tuple[Pool, Pool]:
    """(classifier pool: both classes, GAN pool: NORMAL only) from the training split."""
    index, _ = index_kermany(resolve_data_dir(data_dir))
    train = index[index["split"] == "train"]
    cache = ImageCache()
    pools = []
    for rows in (train, train[train["label"] == "NORMAL"]):
        if max_images and len(rows) > max_images:
            rows = rows.sample(n=max_images, random_state=0)
        images, ok, _ = cache.load(rows["path"].tolist(), rows["sha256"].tolist(), size)
        if not ok.any():
            raise PneumoniaAugError(f"no readable training images in {resolve_data_dir(data_dir)}")
        labels = (rows["label"] == POSITIVE).to_numpy(np.float32)[ok]
        pools.append(Pool(images[ok], labels, rows["path"][ok].tolist()))
    return pools[0], pools[1]


class _Batches:
    """Fixed-size shuffled index batches over n images; a new permutation as each pass ends."""

    def __init__(self, n: int, batch: int, gen: torch.Generator, device: torch.device):
        self.n, self.batch, self.gen, self.device = n, batch, gen, device
        self.order = torch.empty(0, dtype=torch.long, device=device)
        self.pos = 0

    def next(self) -> torch.Tensor:
        while len(self.order) - self.pos < self.batch:
            fresh = torch.randperm(self.n, generator=self.gen, device=self.gen.device)
            self.order, self.pos = torch.cat([self.order[self.pos:], fresh.to(self.device)]), 0
        self.pos += self.batch
        return self.order[self.pos - self.batch : self.pos]


def _classifier(device: torch.device, project_precision: bool = True):
    cfg = ClassifierConfig()
    model = CheXNet().to(device).train()
    if device.type == "cuda" and project_precision:
        model = model.to(memory_format=torch.channels_last)
    return model, torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def classifier_bare(device, size: int, batch: int, project_precision: bool = True):
    model, opt = _classifier(device, project_precision)
    x = torch.rand(batch, 1, size, size, device=device)
    if device.type == "cuda" and project_precision:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch,), device=device).float()

    def step():
        with _autocast(device) if project_precision else contextlib.nullcontext():
            loss = F.binary_cross_entropy_with_logits(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def classifier_loop(device, pool: Pool, batch: int):
    """The inner step of `train_classifier` (its helpers, in its order) on the cached images;
    fixed-size batches, so every timed step does the same work."""
    model, opt = _classifier(device)
    crop_min = ClassifierConfig().crop_scale_min
    gen = torch.Generator(device=device).manual_seed(0)
    train_x, train_y = _as_tensor(Subset(pool.images, pool.labels, None), device)
    batches = _Batches(len(train_x), batch, gen, train_x.device)
    loss_sum = torch.zeros((), device=device)

    def step():
        nonlocal loss_sum
        idx = batches.next()
        loss_sum += train_step(model, opt, train_x, train_y, idx, device, gen, crop_min) * len(idx)
    return step


def paper_loop(device, pool: Pool, size: int):
    """PIL + torchvision per image and step, in the main process, fp32, RGB input, batch 16."""
    model, opt = _classifier(device, project_precision=False)
    tf = transforms.Compose([
        transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    cpu = torch.device("cpu")
    batches = _Batches(len(pool.paths), PAPER_BATCH, torch.Generator().manual_seed(0), cpu)
    running = 0.0

    def load(i: int) -> torch.Tensor:
        with Image.open(pool.paths[i]) as img:
            return tf(img.convert("RGB"))

    def step():
        nonlocal running
        idx = batches.next().tolist()
        x = torch.stack([load(i) for i in idx]).to(device)
        y = torch.tensor(pool.labels[idx]).to(device)
        loss = F.binary_cross_entropy_with_logits(model.net(x).squeeze(1), y)  # DenseNet121, 3 ch
        opt.zero_grad()
        loss.backward()
        opt.step()
        running += loss.item()  # the usual per-step read of the loss
    return step


def _gan(model: str, device, size: int, batch: int):
    cfg = GANConfig(model=model, image_size=size, batch_size=batch, device=device.type)
    G, D = (m.to(device) for m in build_gan(model, size, cfg.latent_dim))
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, 0.999))
    return cfg, G, D, opt_g, opt_d


def gan_bare(device, size: int, batch: int, model: str = "dcgan"):
    """One D step (real + generated) and one G step on random tensors, as `_train_step` does."""
    cfg, G, D, opt_g, opt_d = _gan(model, device, size, batch)
    real = torch.rand(batch, 1, size, size, device=device) * 2 - 1
    z = torch.randn(batch, cfg.latent_dim, device=device)
    y = torch.randint(0, 2, (batch,), device=device) if model == "cgan" else None
    y2 = torch.cat([y, y]) if y is not None else None
    targets = torch.cat([torch.ones(batch, device=device), torch.zeros(batch, device=device)])

    def step():
        with _autocast(device):
            fake = G(z, y).float()
            d_logits = D(torch.cat([real, fake.detach()]), y2).float()
        d_loss = F.binary_cross_entropy_with_logits(d_logits, targets)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        D.requires_grad_(False)
        with _autocast(device):
            g_logits = D(fake, y).float()
        g_loss = F.binary_cross_entropy_with_logits(g_logits, targets[:batch])
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)
    return step


def gan_loop(device, pool: Pool, size: int, batch: int):
    """`training.gan._train_step` on the cached NORMAL images, summing stats as `train_gan`."""
    cfg, G, D, opt_g, opt_d = _gan("dcgan", device, size, batch)
    train_x, train_y = _to_device(pool.images, np.zeros(len(pool.images), np.int64), cfg, device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    batches = _Batches(len(train_x), batch, gen, train_x.device)
    sums = torch.zeros(4, device=device)

    def step():
        idx = batches.next()
        stats = _train_step(G, D, opt_g, opt_d, train_x[idx], train_y[idx], cfg, gen, False, device)
        sums.add_(stats * len(idx))
    return step


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
        for v, steps in zip(variants, plan):
            n = steps * (r + 1) // rounds - steps * r // rounds
            _sync(device)
            start = time.perf_counter()
            for _ in range(n):
                v.step()
            _sync(device)
            v.seconds += time.perf_counter() - start
            v.images += n * v.batch


PROBES = (  # (label, builder, batch): the paper's batch sizes at 256 px
    ("classifier, project step (bf16, channels-last)", "classifier", PAPER_BATCH),
    ("classifier, fp32 (paper precision)", "classifier-fp32", PAPER_BATCH),
    ("DCGAN D + G step (bf16)", "dcgan", GAN_PAPER_BATCH),
    ("CGAN D + G step (bf16)", "cgan", GAN_PAPER_BATCH),
)


def _probe_builder(kind: str, device, batch: int) -> Callable[[], None]:
    if kind.startswith("classifier"):
        return classifier_bare(device, PROBE_SIZE, batch, project_precision=kind == "classifier")
    return gan_bare(device, PROBE_SIZE, batch, model=kind)


def memory_probe(device) -> list[dict]:
    """Peak GPU memory of three steps of each 256 px model at the paper's batch size, alone."""
    if device.type != "cuda":
        return []
    rows = []
    for label, kind, batch in PROBES:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device), torch.cuda.memory_reserved(device)
        step = _probe_builder(kind, device, batch)
        for _ in range(3):
            step()
        _sync(device)
        allocated = (torch.cuda.max_memory_allocated(device) - base[0]) / 2**30
        reserved = (torch.cuda.max_memory_reserved(device) - base[1]) / 2**30
        rows.append({"model": label, "batch": batch, "allocated_gib": allocated,
                     "reserved_gib": reserved, "fits_24gb": reserved <= FIT_GIB})
        del step
    gc.collect()
    torch.cuda.empty_cache()
    return rows


def compute_ratios(v: dict[str, Variant]) -> dict[str, float]:
    """Each name in TARGETS is `numerator / denominator`, both variant keys."""
    rate = {k: x.images_per_s for k, x in v.items()}
    return {name: rate[top] / rate[bottom]
            for name in TARGETS for top, bottom in [name.split(" / ")]}


def render(result: BenchResult) -> str:
    """The device's section body: settings, the variants, the ratios, memory."""
    s = result.settings
    lines = [f"Measured {s['date']} with torch {s['torch']}"
             f"{' (CUDA ' + s['cuda'] + ')' if s['cuda'] else ''}: `{s['command']}`",
             f"({s['images']} images per variant, {s['rounds']} interleaved rounds, "
             f"{s['classifier_pool']} classifier / {s['gan_pool']} NORMAL training images "
             f"from `{s['data']}`).", "",
             "| Variant | Batch | Images | Seconds | Images/s | Peak memory added (MiB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for v in result.variants.values():
        peak = "n/a" if v.peak_mib is None else f"{v.peak_mib:.0f}"
        lines.append(f"| {v.key} | {v.batch} | {v.images} | {v.seconds:.2f} | "
                     f"{v.images_per_s:.1f} | {peak} |")
    lines += ["", "| Ratio | Value | Target (GPU, 256 px, batch 128) | Met here |",
              "|---|---:|---:|---|"]
    for name, value in result.ratios.items():
        met = "yes" if value >= TARGETS[name] else "no"
        lines.append(f"| {name} | {value:.2f} | >= {TARGETS[name]:g} | {met} |")
    kind = "max_memory_allocated" if result.settings["cuda"] else "getrusage maxrss"
    lines += ["", f"Peak memory of the run ({kind}): {result.peak_mib:.0f} MiB.", ""]
    lines += _render_probe(result.probe)
    return "\n".join(lines) + "\n"


def _render_probe(probe: list[dict]) -> list[str]:
    title = f"Memory probe, {PROBE_SIZE} px at the paper's batch sizes:"
    if not probe:
        return [f"{title} n/a (no GPU)."]
    lines = [title, "", "| Model step | Batch | Peak allocated (GiB) | Peak reserved (GiB) | "
             "Fits 24 GB |", "|---|---:|---:|---:|---|"]
    for row in probe:
        lines.append(f"| {row['model']} | {row['batch']} | {row['allocated_gib']:.2f} | "
                     f"{row['reserved_gib']:.2f} | {'yes' if row['fits_24gb'] else 'no'} |")
    return lines


def write_section(path: Path, heading: str, body: str) -> None:
    """Replace (or append) the `## heading` section of `path`, keeping the other devices'."""
    sections: dict[str, str] = {}
    current = None
    text = path.read_text() if path.exists() else ""
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = ""
        elif current is not None:
            sections[current] += line
    sections[heading] = "\n" + body
    header = HEADER
    if all(h.startswith("CPU") for h in sections):
        header += f"\nNo GPU section yet: run `{GPU_COMMAND}` on one.\n"
    parts = [header] + [f"## {h}\n{b.rstrip()}\n" for h, b in sections.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))


def print_table(result: BenchResult) -> None:
    click.echo(f"\n## {result.device}\n")
    click.echo(result.markdown)


def run_bench(data_dir: str | None = None, image_size: int | None = None,
              batch_size: int | None = None, steps: int | None = None,
              warmup: int | None = None, device: str = "auto",
              output: str | Path | None = "docs/benchmarks.md", max_images: int = 1024,
              rounds: int = 4, threads: int = 0) -> BenchResult:
    """Measure the five variants on one device; write its section of `output` (None: don't).
    `threads`: CPU intra-op threads for this run (0 = leave PyTorch's setting)."""
    with _threads(threads):
        return _run_bench(data_dir, image_size, batch_size, steps, warmup, device, output,
                          max_images, rounds)


@contextlib.contextmanager
def _threads(n: int):
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_bench(data_dir, image_size, batch_size, steps, warmup, device, output, max_images,
               rounds) -> BenchResult:
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
    data_dir = data_dir or default_data_dir()
    classifier_pool, gan_pool = load_pools(data_dir, size, max_images)
    builders = [
        ("classifier bare step", batch, lambda: classifier_bare(dev, size, batch)),
        ("classifier loop", batch, lambda: classifier_loop(dev, classifier_pool, batch)),
        ("paper-style loop", PAPER_BATCH, lambda: paper_loop(dev, classifier_pool, size)),
        ("GAN bare step", batch, lambda: gan_bare(dev, size, batch)),
        ("GAN loop", batch, lambda: gan_loop(dev, gan_pool, size, batch)),
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
    probe = memory_probe(dev)
    settings = _settings(dev, data_dir, size, batch, steps, warmup, rounds,
                         len(classifier_pool.images), len(gan_pool.images))
    result = BenchResult(device_name(dev), settings, by_key, compute_ratios(by_key), peak, probe)
    result.markdown = render(result)
    if output:
        write_section(Path(output), result.device, result.markdown)
    return result


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
    command = (f"pneumonia-aug bench --device {dev.type} --image-size {size} --batch-size {batch}"
               f" --steps {steps} --warmup {warmup}"
               + ("" if dev.type == "cuda" else f" --threads {torch.get_num_threads()}"))
    return {"date": datetime.date.today().isoformat(), "torch": torch.__version__,
            "cuda": torch.version.cuda if dev.type == "cuda" else "", "command": command,
            "image_size": size, "batch_size": batch, "steps": steps, "warmup": warmup,
            "rounds": rounds, "images": steps * batch, "classifier_pool": n_cls,
            "gan_pool": n_gan, "data": Path(resolve_data_dir(data_dir)).name}


@click.command("bench")
@click.option("--data-dir", default=None,
              help=f"Kermany folder [default: ${DATA_DIR_ENV}, else ../shared/data/chest_xray]")
@click.option("--image-size", type=int, default=None, help="px [default: 256 on CUDA, 64 on CPU]")
@click.option("--batch-size", type=int, default=None, help="[default: 128 on CUDA, 16 on CPU]")
@click.option("--steps", type=int, default=None,
              help="timed steps per variant at --batch-size [default: 50 on CUDA, 20 on CPU]")
@click.option("--warmup", type=int, default=None, help="untimed steps [default: 10 CUDA, 2 CPU]")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("--max-images", type=int, default=1024, show_default=True,
              help="training images decoded for the loops (0 = all)")
@click.option("--rounds", type=int, default=4, show_default=True,
              help="interleaved rounds the timed steps are split into")
@click.option("--threads", type=int, default=0, show_default=True,
              help="CPU intra-op threads (0 = PyTorch's default; 1 on busy 2-core machines)")
@click.option("--output", default="docs/benchmarks.md", show_default=True,
              help="markdown file whose section for this device is replaced")
def bench(**options) -> None:
    """Images/s of the classifier and GAN loops vs. their bare steps and a paper-style loop."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = run_bench(**options)
    except PneumoniaAugError as exc:
        raise click.ClickException(str(exc)) from exc
    print_table(result)
    if options["output"]:
        click.echo(f"wrote the '{result.device}' section of {options['output']}")


if __name__ == "__main__":
    bench()

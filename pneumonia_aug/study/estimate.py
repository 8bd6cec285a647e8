"""How long a study stage takes: images to process over the throughput of the device.

The figures are data the package ships (`measured`), each with its device, date and source:
this device's `bench train` records (`bench.json`, written by the bench), else those recorded
for its kind from runs outside the bench (`recorded.json`); of these, the ones measured at the
image size nearest the study's (small images leave a card waiting on each layer's launch and
the stage's own Python, so figures scaled by pixels from another size promise too much:
docs/study.md). A CPU without a record of its own takes another CPU's. The model, rough by
design:

- compute grows with pixels: a figure measured at s px counts (s / size)^2 at `size`; a
  classifier on a GPU only above s (below it, it is bound by launches and Python);
- CPU: a stage with t threads runs t times the 1-thread figure (optimistic: two threads on
  two busy cores do worse);
- GPU: k stages sharing a card each get min(their batch's figure, the card's total / k): a
  small-batch classifier leaves most of a card idle, so several share it nearly for free. k
  counts the stages of that kind that can run together (the study's GANs, or its
  classifiers), up to the width, spread over the cards; with Ray a GAN has a card to itself;
- evaluation (validation, test, FID features, generation) runs at 3x the training rate (a
  forward pass is about a third of forward + backward); every stage also pays a fixed
  overhead per kind (process start, data, logging and registering its model), recorded per
  device kind (`recorded.json`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from pneumonia_aug import measured
from pneumonia_aug.config import ClassifierConfig, GANConfig, Profile
from pneumonia_aug.contract import GAN_QUALITY, GENERATE, TRAIN_CLASSIFIER, TRAIN_GAN, Gan
from pneumonia_aug.data.kermany import CLASSES, EXPECTED_COUNTS
from pneumonia_aug.data.splits import VAL_FRACTION
from pneumonia_aug.errors import PneumoniaAugError

# The Kermany training pool (train/ + val/; VAL_FRACTION of it validates) and test/.
POOLED = {label: EXPECTED_COUNTS[("train", label)] for label in CLASSES}
N_TEST = sum(EXPECTED_COUNTS[("test", label)] for label in CLASSES)
EVAL_SPEEDUP = 3.0
# Per stage kind, beyond its images (start, data, logging, registry), per device kind.
OVERHEAD_S = {o["kind"]: o["seconds"] for o in measured.shipped(measured.RECORDED)["overhead"]}


@dataclass(frozen=True)
class Throughput:
    kind: str  # "cpu" or "gpu"
    source: str  # where the figures come from, for the plan's header
    image_size: int
    classifier: dict[int, float]  # batch -> training images/s
    gan: float  # D + G step, images/s
    threads: int = 1  # the CPU threads the figures were measured with
    card: float = 0.0  # classifier images/s a card gives stages sharing it (0: the best figure)

    @property
    def card_total(self) -> float:
        return self.card or max(self.classifier.values())

    def classifier_rate(self, batch: int) -> float:
        """The figure at the largest measured batch <= `batch` (else the smallest)."""
        fits = [b for b in self.classifier if b <= batch] or [min(self.classifier)]
        return self.classifier[max(fits)]


def bench_figures(record: dict) -> Throughput:
    """The training figures of a `bench train` record (`measured`)."""
    classifier, gan = measured.training_rates(record)
    return Throughput(record["kind"], f"{record['device']}, {record['date']}, "
                      "docs/benchmarks.md", record["image_size"], classifier, gan,
                      record["threads"])


def recorded_figures(entry: dict) -> Throughput:
    """The figures of a `throughput` entry of `recorded.json` (`measured`)."""
    return Throughput(entry["kind"], f"{entry['device']}, {entry['date']}, {entry['source']}",
                      entry["image_size"], {int(b): r for b, r in entry["classifier"].items()},
                      entry["gan"], entry["threads"], entry.get("card", 0.0))


def figures_for(device: str, kind: str, image_size: int, bench: list[dict] | None = None,
                recorded: list[dict] | None = None) -> Throughput:
    """The figures for a study at `image_size` px on `device` (a GPU's name, or `CPU: MODEL`)
    of `kind` ("cpu" or "gpu"): its bench records, else those recorded for its kind, else
    other devices' bench records of its kind; of them, the nearest the study's size. `bench`
    and `recorded` (the `throughput` entries) default to the package's."""
    bench = measured.bench_records() if bench is None else bench
    if recorded is None:
        recorded = measured.shipped(measured.RECORDED)["throughput"]
    own = [bench_figures(r) for r in bench if r["device"].startswith(device)]
    candidates = (own or [recorded_figures(e) for e in recorded if e["kind"] == kind]
                  or [bench_figures(r) for r in bench if r["kind"] == kind])
    if not candidates:
        raise PneumoniaAugError(f"no {kind} figures to estimate from: run `pneumonia-aug bench "
                                f"train --device {'cuda' if kind == 'gpu' else 'cpu'}` here")
    return nearest_size(tuple(candidates), image_size)


def nearest_size(figures: tuple[Throughput, ...], image_size: int) -> Throughput:
    """The figures measured at the image size nearest `image_size` (by pixel ratio)."""
    return min(figures, key=lambda f: abs(math.log(f.image_size / image_size)))


def this_device(gpus: int | None, image_size: int = 256) -> tuple[Throughput, int]:
    """(figures, GPUs) for this machine, or for `gpus` GPUs when given (0: the CPU), for a
    study at `image_size` px."""
    from pneumonia_aug.machine import cpu_model

    if gpus is None:
        import torch

        gpus = torch.cuda.device_count()
    if gpus:
        import torch

        name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "\0"
        return figures_for(name, "gpu", image_size), gpus
    return figures_for(f"CPU: {cpu_model()}", "cpu", image_size), 0


@dataclass(frozen=True)
class Device:
    """What one stage gets when up to `width` run at once, `counts[kind]` of its kind being
    the most that can be in flight together (the GANs of a study run side by side, then the
    classifiers); `gan_owns_card`: a GAN gets a card to itself (Ray asks for a whole one)."""

    figures: Throughput
    gpus: int
    cores: int
    width: int
    counts: dict[str, int] = field(default_factory=dict)
    gan_owns_card: bool = False

    def scale(self, size: int, kind: str) -> float:
        """Pixels at `size` against the figures' size; a classifier on a GPU no faster below
        it (DenseNet121's 120 layers wait on launches and Python, not on pixels: the studies
        in docs/study.md, "checked against the studies run on a GPU")."""
        ratio = (self.figures.image_size / size) ** 2
        if self.figures.kind != "cpu" and kind == TRAIN_CLASSIFIER:
            return min(1.0, ratio)
        return ratio

    def _share(self, kind: str, rate: float, ceiling: float) -> float:
        if self.figures.kind == "cpu":
            threads = max(1, self.cores // max(1, self.width))
            return rate * threads / self.figures.threads
        together = min(max(1, self.width), self.counts.get(kind, self.width))
        sharing = 1 if kind == TRAIN_GAN and self.gan_owns_card else math.ceil(
            together / max(1, self.gpus))
        return min(rate, ceiling / sharing)

    def classifier_rate(self, batch: int, size: int) -> float:
        f = self.figures
        rate = self._share(TRAIN_CLASSIFIER, f.classifier_rate(batch), f.card_total)
        return rate * self.scale(size, TRAIN_CLASSIFIER)

    def gan_rate(self, size: int) -> float:
        return (self._share(TRAIN_GAN, self.figures.gan, self.figures.gan)
                * self.scale(size, TRAIN_GAN))


def _real_train(r: float, scope: str, cap: int) -> tuple[float, float]:
    """(NORMAL, PNEUMONIA) training images a setting with real fraction r keeps."""
    normal = POOLED["NORMAL"] * (1 - VAL_FRACTION) * r
    pneumonia = POOLED["PNEUMONIA"] * (1 - VAL_FRACTION) * (r if scope == "all" else 1)
    if cap and normal + pneumonia > cap:
        share = cap / (normal + pneumonia)
        normal, pneumonia = normal * share, pneumonia * share
    return normal, pneumonia


def classifier_seconds(cfg: ClassifierConfig, n_generated: int, device: Device) -> float:
    setting = cfg.parsed_setting
    cap = cfg.max_images_per_split
    train = sum(_real_train(setting.real_fraction, cfg.real_fraction_scope, cap))
    train += round(setting.synthetic_fraction * n_generated)
    n_val = sum(POOLED.values()) * VAL_FRACTION
    val, test = min(n_val, cap or n_val), min(N_TEST, cap or N_TEST)
    rate = device.classifier_rate(cfg.batch_size, cfg.image_size)
    evaluated = cfg.epochs * val + test
    return cfg.epochs * train / rate + evaluated / (rate * EVAL_SPEEDUP)


def gan_seconds(cfg: GANConfig, device: Device) -> float:
    """Training, and drawing the images kept for quality (a generation's rate)."""
    normal, pneumonia = _real_train(cfg.real_fraction, cfg.real_fraction_scope, 0)
    images = normal + (pneumonia if cfg.gan is Gan.CGAN else 0)
    images = min(images, cfg.max_images or images)
    drawn = _evaluations(cfg) * cfg.eval_images
    rate = device.gan_rate(cfg.image_size)
    return cfg.epochs * images / rate + drawn / (rate * EVAL_SPEEDUP)


def _evaluations(cfg: GANConfig) -> int:
    """Sampled epochs, and the memorization set."""
    return (cfg.epochs // cfg.sample_every + 1) if cfg.sample_every else 0


def quality_seconds(cfg: GANConfig, device: Device) -> float:
    """The feature network over each kept set, the real reference set beside each, and the
    real training images for the memorization check."""
    normal, _ = _real_train(cfg.real_fraction, cfg.real_fraction_scope, 0)
    featured = _evaluations(cfg) * 2 * cfg.eval_images + normal
    rate = device.classifier_rate(cfg.batch_size, cfg.image_size)
    return featured / (rate * EVAL_SPEEDUP)


def stage_seconds(kind: str, config, profile: Profile, device: Device) -> float:
    """Estimated wall time of one stage run of the study's `profile`, overhead included."""
    overhead = OVERHEAD_S[device.figures.kind][kind]
    if kind == TRAIN_CLASSIFIER:
        return overhead + classifier_seconds(config, profile.n_images, device)
    if kind == TRAIN_GAN:
        return overhead + gan_seconds(config, device)
    if kind == GAN_QUALITY:
        return overhead + quality_seconds(config, device)
    if kind == GENERATE:
        return overhead + profile.n_images / (device.gan_rate(profile.image_size) * EVAL_SPEEDUP)
    return overhead  # compare: reads the runs, writes the table

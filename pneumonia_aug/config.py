"""Every run configuration in one place, each field with its default and its help text.

Defaults are the paper's values (Tung et al., section 3) or the authors' code where the two
disagree (docs/protocol.md decides); each says where it comes from. The CLI builds its options
from these fields (`cli/options.py`), MLproject repeats the user-facing ones (a test
checks they agree), and the resolved config is logged as run params and saved in every
checkpoint. Nothing here imports torch, so `pneumonia-aug --help` stays fast.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields

from pneumonia_aug.contract import DEFAULT_CLASSIFIER_URI, GAN_CHOICES, N_GENERATED, Gan
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.models.sizes import gan_stages

EXPERIMENT_NAME = "pneumonia-aug"
PAPER_BATCH_SIZE = 16  # CheXNet's batch size (paper, section 3.3)
AUTHORS_GAN_BATCH_SIZE = 128  # the authors' GAN code
LR_SCALING_RULES = ("none", "linear", "sqrt")
PRETRAINED_CHOICES = ("none", "imagenet")
REAL_FRACTION_SCOPES = ("normal", "all")
REAL_SUBSETS = ("per_seed", "fixed")
EXECUTORS = ("local", "ray")
# How a classifier run chooses its operating point on validation (evaluation/operating_point.py).
THRESHOLD_RULES = ("spec_at_sens95", "youden", "0.5")


DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")  # DiffAugment (Zhao et al. 2020)


def parse_policy(policy: str) -> list[str]:
    """`"color,cutout"` -> `["color", "cutout"]`; ValueError naming the valid policies."""
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in names if p not in DIFFAUGMENT_POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {unknown}: use a comma-separated subset "
                         f"of {', '.join(DIFFAUGMENT_POLICIES)} (e.g. 'color,translation,cutout'), "
                         "or '' for none")
    return names


def param(default, help: str, choices: tuple[str, ...] | None = None):
    """A config field: its default, the help text the CLI shows, and its choices if any."""
    return field(default=default, metadata={"help": help, "choices": choices})


def scale_lr(lr: float, batch_size: int, reference_batch: int, rule: str) -> float:
    """The learning rate for `batch_size`, from `lr` set for `reference_batch` (the paper's).

    none: `lr` as given (the paper's runs, or an lr tuned by hand); linear: times
    batch / reference (Goyal et al. 2017); sqrt: times sqrt(batch / reference), gentler, often
    preferred with Adam.
    """
    ratio = batch_size / reference_batch
    return {"none": lr, "linear": lr * ratio, "sqrt": lr * math.sqrt(ratio)}[rule]


def to_bool(value) -> bool:
    """`True`, or the strings `mlflow run -P` and the CLI give (`true`/`false`, `1`/`0`,
    `yes`/`no`); anything else is a ValueError."""
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(value)


def coerce_fields(config) -> None:
    """Coerce every field to its declared type (values arrive as strings from `mlflow run -P`)
    and check choices."""
    for f in fields(config):
        value = getattr(config, f.name)
        kind = {"int": int, "float": float, "str": str, "bool": to_bool}[str(f.type)]
        try:
            value = kind(float(value)) if kind is int and str(value).strip() else kind(value)
            if kind is int and float(getattr(config, f.name)) != value:
                raise ValueError
        except (TypeError, ValueError) as exc:
            raise PneumoniaAugError(
                f"parameter {f.name}={getattr(config, f.name)!r} is not a valid {f.type}") from exc
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise PneumoniaAugError(f"{f.name} must be one of {choices}, not {value!r}")
        setattr(config, f.name, value)


def check(checks: list[tuple[bool, str]]) -> None:
    """Raise the first failed check's message (one line: the user sees it as `error: ...`)."""
    for ok, message in checks:
        if not ok:
            raise PneumoniaAugError(message)


class _Config:
    def to_dict(self) -> dict:
        return asdict(self)


EXPERIMENT_HELP = "MLflow experiment (when not launched by `mlflow run`)"
DATA_DIR_HELP = "Kermany folder ('' = $PNEUMONIA_AUG_DATA_DIR or data/chest_xray)"
CACHE_DIR_HELP = "decoded-image cache ('' = $PNEUMONIA_AUG_CACHE_DIR or ~/.cache/pneumonia-aug)"
DEVICE_HELP = "auto (cuda when available), cpu or cuda"
SYSTEM_METRICS_HELP = ("log MLflow's system metrics (CPU, memory, disk, network; GPU where "
                       "NVML is present) as system/* every 10 s; MLflow's "
                       "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true also turns them on")


@dataclass
class ClassifierConfig(_Config):
    """CheXNet on one setting (paper section 3.3; docs/protocol.md "Classifier")."""

    setting: str = param("Original-1.0-0.0", "{Original|DCGAN|CGAN}-{r}-{g}, e.g. DCGAN-1.0-0.6")
    seed: int = param(0, "seed of every random draw of the run: subsets, init, batches, "
                         "augmentation")
    split_seed: int = param(0, "seed of the validation split, shared by every setting")
    image_size: int = param(256, "working image size in px, square (the GANs draw 256 px)")
    epochs: int = param(100, "training epochs (paper: 100)")
    batch_size: int = param(PAPER_BATCH_SIZE, "batch size (paper: 16)")
    lr: float = param(1e-3, "Adam learning rate (paper: 1e-3, for batch 16)")
    lr_scaling: str = param("none", "how lr follows batch_size: none (as given), linear or "
                                    "sqrt in batch / 16 (not in the paper)", LR_SCALING_RULES)
    weight_decay: float = param(1e-5, "Adam weight decay (authors' code)")
    lr_factor: float = param(0.1, "ReduceLROnPlateau factor on validation loss (CheXNet)")
    lr_patience: int = param(5, "ReduceLROnPlateau patience in epochs (CheXNet)")
    # torchvision's default scale range, as the authors' transforms used.
    crop_scale_min: float = param(0.08, "smallest area fraction of the random resized crop")
    pretrained: str = param("none", "initial weights: none (authors' code) or imagenet (the "
                                    "paper's text; needs torchvision's weights locally)",
                            PRETRAINED_CHOICES)
    real_fraction_scope: str = param("normal", "which classes r subsamples: normal (authors' "
                                               "code) or all (the paper's wording)",
                                     REAL_FRACTION_SCOPES)
    real_subset: str = param("per_seed", "which real images r keeps: per_seed (authors' code: "
                                         "drawn by the run's seed) or fixed (drawn by "
                                         "split_seed: the same for every seed, and what a GAN "
                                         "with real_fraction r learns from)", REAL_SUBSETS)
    data_dir: str = param("", DATA_DIR_HELP)
    cache_dir: str = param("", CACHE_DIR_HELP)
    synthetic_run_id: str = param("", "generate run whose images a GAN setting adds ('' = the "
                                      "newest finished one of that GAN in the experiment)")
    max_images_per_split: int = param(0, "debug/test: cap each of train/val/test (0 = all; "
                                         "such runs are not comparable)")
    threshold_rule: str = param("spec_at_sens95", "operating point of the registered model, "
                                                  "chosen on the temperature-calibrated "
                                                  "validation probabilities: spec_at_sens95 "
                                                  "(highest specificity at sensitivity >= "
                                                  "0.95), youden (Youden's J) or 0.5 (fixed); "
                                                  "Table 1 stays at 0.5 (not in the paper)",
                                THRESHOLD_RULES)
    device: str = param("auto", DEVICE_HELP)
    system_metrics: bool = param(False, SYSTEM_METRICS_HELP)
    experiment_name: str = param(EXPERIMENT_NAME, EXPERIMENT_HELP)

    def __post_init__(self) -> None:
        coerce_fields(self)
        check([
            (self.image_size >= 32, "image_size must be at least 32 (DenseNet121 downsamples 32x)"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 2, "batch_size must be at least 2 (batch norm)"),
            (self.lr > 0, "lr must be positive"),
            (0 < self.crop_scale_min <= 1, "crop_scale_min must be in (0, 1]"),
            (self.max_images_per_split >= 0, "max_images_per_split must be >= 0 (0 = all)"),
        ])

    @property
    def effective_lr(self) -> float:
        return scale_lr(self.lr, self.batch_size, PAPER_BATCH_SIZE, self.lr_scaling)


@dataclass
class GANConfig(_Config):
    """A DCGAN or CGAN (paper section 3; docs/protocol.md "GANs")."""

    model: str = param(Gan.DCGAN.value, "dcgan (NORMAL only) or cgan (both classes, labelled)",
                       GAN_CHOICES)
    image_size: int = param(256, "image size in px, 8 * 2**k (the authors' GANs: 256)")
    epochs: int = param(500, "training epochs (authors' code: 500)")
    batch_size: int = param(AUTHORS_GAN_BATCH_SIZE, "batch size (authors' code: 128)")
    # The paper says lr 0.005; the authors' code used 2e-5 (D) and 1e-4 (G), for batch 128.
    # docs/protocol.md follows the code.
    lr_d: float = param(2e-5, "discriminator Adam lr (authors' code 2e-5; the paper says 0.005)")
    lr_g: float = param(1e-4, "generator Adam lr (authors' code 1e-4; the paper says 0.005)")
    lr_scaling: str = param("none", "how lr_d, lr_g follow batch_size: none, linear or sqrt "
                                    "in batch / 128", LR_SCALING_RULES)
    beta1: float = param(0.5, "Adam beta1 (authors' code, as in DCGAN)")
    latent_dim: int = param(100, "length of the N(0, 1) noise vector (paper, section 3)")
    seed: int = param(0, "seed of the weights, batch order, noise and DiffAugment draws")
    split_seed: int = param(0, "the validation split whose training part the GAN learns from")
    real_fraction: float = param(1.0, "learn from the real images an r = real_fraction setting "
                                      "keeps (real_subset=fixed); 1 = all (authors' code)")
    real_fraction_scope: str = param("normal", "which classes real_fraction subsamples: normal "
                                               "or all", REAL_FRACTION_SCOPES)
    data_dir: str = param("", DATA_DIR_HELP)
    cache_dir: str = param("", CACHE_DIR_HELP)
    diffaugment: str = param("", "DiffAugment policy for D, e.g. color,translation,cutout "
                                 "('' = off, faithful; not in the paper)")
    eval_images: int = param(500, "generated images per FID/KID evaluation and memorization "
                                  "check (not in the paper)")
    sample_every: int = param(10, "epochs between sample grids and FID/KID evaluations "
                                  "(0 = never)")
    max_images: int = param(0, "debug/test: train on at most this many images (0 = all)")
    device: str = param("auto", DEVICE_HELP)
    system_metrics: bool = param(False, SYSTEM_METRICS_HELP)
    experiment_name: str = param(EXPERIMENT_NAME, EXPERIMENT_HELP)
    feature_model_uri: str = param(DEFAULT_CLASSIFIER_URI, "X-ray classifier whose features "
                                                           "FID/KID use ('' = skip)")

    def __post_init__(self) -> None:
        self.model = str(self.model).lower()
        coerce_fields(self)
        for validate in (lambda: gan_stages(self.image_size),
                         lambda: parse_policy(self.diffaugment)):
            try:
                validate()
            except ValueError as exc:
                raise PneumoniaAugError(str(exc)) from exc
        check([
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.lr_d > 0 and self.lr_g > 0, "lr_d and lr_g must be positive"),
            (0 <= self.beta1 < 1, "beta1 must be in [0, 1)"),
            (self.latent_dim >= 1, "latent_dim must be at least 1"),
            (self.sample_every >= 0, "sample_every must be >= 0 (0 = never)"),
            (self.eval_images >= 2, "eval_images must be at least 2"),
            (self.max_images >= 0, "max_images must be >= 0 (0 = all)"),
            (0 < self.real_fraction <= 1, "real_fraction must be in (0, 1]"),
        ])

    @property
    def gan(self) -> Gan:
        return Gan.parse(self.model)

    @property
    def effective_lrs(self) -> tuple[float, float]:
        """(lr_d, lr_g) after `lr_scaling` to this batch size."""
        return tuple(scale_lr(lr, self.batch_size, AUTHORS_GAN_BATCH_SIZE, self.lr_scaling)
                     for lr in (self.lr_d, self.lr_g))


@dataclass
class GenerateConfig(_Config):
    """Draw NORMAL images from a registered generator (paper: 4000 per GAN)."""

    model: str = param(Gan.DCGAN.value, "which GAN: dcgan or cgan", GAN_CHOICES)
    model_uri: str = param("", "generator to draw from ('' = "
                               "models:/pneumonia-<model>-generator@newest)")
    n_images: int = param(N_GENERATED, "images to draw (paper: 4000)")
    seed: int = param(0, "seed of the noise")
    device: str = param("auto", DEVICE_HELP)
    experiment_name: str = param(EXPERIMENT_NAME, EXPERIMENT_HELP)

    def __post_init__(self) -> None:
        self.model = str(self.model).lower()
        coerce_fields(self)
        check([(self.n_images >= 1, f"n_images must be at least 1, not {self.n_images}")])

    @property
    def gan(self) -> Gan:
        return Gan.parse(self.model)


COMPARE_SOURCES = ("study", "experiment")


@dataclass
class CompareConfig(_Config):
    """Table 1 from the classifier runs of one comparison group."""

    experiment_name: str = param(EXPERIMENT_NAME, "experiment whose classifier runs to compare")
    source: str = param("study", "study: the runs of one study (parent_run_id, default the "
                                 "newest); experiment: every classifier run of the experiment, "
                                 "one comparison group at a time", COMPARE_SOURCES)
    parent_run_id: str = param("", "the study run whose runs to compare ('' = the newest "
                                   "finished study of the experiment)")
    group: str = param("", "comparison key (or its start) of the group to tabulate ('' = the "
                           "study's, or the newest complete group)")
    output_dir: str = param("outputs/compare", "where the reports go")

    def __post_init__(self) -> None:
        coerce_fields(self)


@dataclass(frozen=True)
class Profile:
    """The scale of a study: sizes, epochs and caps of every stage it launches."""

    image_size: int
    gan_epochs: int
    gan_batch_size: int
    classifier_epochs: int
    classifier_batch_size: int
    n_images: int  # generated images per GAN
    max_images_per_split: int = 0  # 0 = all
    gan_max_images: int = 0  # 0 = all
    sample_every: int = 10
    eval_images: int = 500  # generated images per FID/KID evaluation and memorization check
    settings: str = "table1"  # what `study --settings ''` runs (see study/study.py)
    seeds: str = "0,1,2"  # what `study --seeds ''` runs
    lr_scaling: str = "none"  # classifier and GANs, from the paper's batch sizes


# The settings that carry the paper's claim (augmentation at r = 1 and r = 0.3).
CLAIM_SETTINGS = "Original-1.0-0.0,DCGAN-1.0-0.6,CGAN-1.0-0.6,Original-0.3-0.0,DCGAN-0.3-0.6"

PROFILES = {
    # The paper: 256 px, 500 GAN epochs at batch 128, 100 classifier epochs at batch 16, 4000
    # generated images per GAN (sections 3.1-3.3 and the authors' code).
    "paper": Profile(256, 500, AUTHORS_GAN_BATCH_SIZE, 100, PAPER_BATCH_SIZE, N_GENERATED,
                     sample_every=10),
    # About 7 minutes on one H200 with 9 stages sharing it: the claim's settings at 128 px on
    # the full data, 3 seeds. Departs from the paper: 128 px not 256, 10 classifier epochs not
    # 100 at batch 64 not 16 (lr scaled by sqrt), GANs 80 epochs not 500, 5 settings not 12.
    # Cut from 15 classifier and 200 GAN epochs after the first H200 run (15/120 needed about
    # 11 minutes): the Originals, then the CGAN (all 4709 training images, after the Original
    # runs that give the feature network), its generation and its rows are the longest path.
    "short": Profile(128, 80, AUTHORS_GAN_BATCH_SIZE, 10, 64, N_GENERATED, sample_every=40,
                     settings=CLAIM_SETTINGS, lr_scaling="sqrt"),
    # Evidence on 2 CPU cores in about an hour: the full data at 32 px, the DCGAN rows of the
    # claim and their Originals, 3 seeds. Departs from the paper: 32 px, 10 classifier epochs
    # at batch 32, the DCGAN 150 epochs at batch 64, no CGAN.
    "medium": Profile(32, 150, 64, 10, 32, N_GENERATED, sample_every=25,
                      settings="Original-1.0-0.0,DCGAN-1.0-0.6,Original-0.3-0.0,DCGAN-0.3-0.6"),
    # Small enough for the whole study (one seed) on 2 CPU cores in under 20 minutes: a smoke
    # test on capped subsets, not evidence.
    "quick": Profile(32, 12, 64, 5, 32, 400, max_images_per_split=500, gan_max_images=512,
                     sample_every=4, eval_images=100),
    # For tests: the smallest thing that exercises every stage.
    "tiny": Profile(32, 1, 32, 1, 16, 20, max_images_per_split=40, gan_max_images=32,
                    sample_every=1, eval_images=8),
}


@dataclass
class StudyConfig(_Config):
    """The whole study: every stage a profile needs, as runs nested under one parent run."""

    profile: str = param("quick", "paper (256 px, 500 GAN / 100 classifier epochs), short (minutes "
                                  "on one GPU), medium (an hour on 2 CPU cores), quick (CPU "
                                  "smoke test) or tiny (tests)", tuple(PROFILES))
    seeds: str = param("", "comma-separated classifier seeds ('' = the profile's: 0,1,2)")
    settings: str = param("", "table1 (the paper's 12 rows), all (+ the -1.0-1.0 rows), a "
                              "comma-separated list, or '' = the profile's (table1; short: the "
                              "claim's 5 rows; medium: its 4 DCGAN rows)")
    real_subset: str = param("per_seed", "per_seed: the authors' way (each GAN learns from all "
                                         "real images; r < 1 rows mix augmentation with "
                                         "withheld images); fixed: one GAN per r, learning "
                                         "only from the real images those settings keep",
                             REAL_SUBSETS)
    data_dir: str = param("", DATA_DIR_HELP)
    system_metrics: bool = param(False, SYSTEM_METRICS_HELP + " (for every training run)")
    experiment_name: str = param(EXPERIMENT_NAME, EXPERIMENT_HELP)
    output_dir: str = param("outputs/study", "where the table goes")
    max_parallel: int = param(1, "stages at once: 1 = one after another in this process; N = "
                                 "up to N stage processes (local; CPU threads divided, GPUs "
                                 "dealt round-robin) or Ray tasks in flight; 0 = one per core "
                                 "(local) or every ready stage (ray: it queues them by "
                                 "resources)")
    executor: str = param("local", "where stages run: local (this machine) or ray (the cluster "
                                   "at $RAY_ADDRESS, else a local one; pip install "
                                   "'pneumonia-aug[ray]')", EXECUTORS)

    def __post_init__(self) -> None:
        coerce_fields(self)
        check([(self.max_parallel >= 0, "max_parallel must be >= 0 (0 = as many as fit)")])

    @property
    def spec(self) -> Profile:
        return PROFILES[self.profile]


@dataclass(frozen=True)
class ChampionGate:
    """When a newly registered classifier version takes `pneumonia-chexnet@champion` from the
    version that holds it (`serving/champion.py`). Both must have been tested on the same test
    set; the values are those their training runs logged on it."""

    auroc_margin: float = param(0.005, "the candidate's test AUROC may be at most this much "
                                       "below the champion's")
    min_sensitivity: float = param(0.95, "the candidate's test sensitivity (recall of "
                                         "PNEUMONIA: test_op/recall at a chosen operating "
                                         "point when its run logged one, else test/recall) "
                                         "must be at least this")


RELIABILITY_ENV_PREFIX = "PNEUMONIA_AUG_"


@dataclass(frozen=True)
class Reliability:
    """How runs ride out tracking outages and share stages with concurrent studies
    (docs/operations.md). Read from the environment as `PNEUMONIA_AUG_<FIELD>` in capitals
    (e.g. `PNEUMONIA_AUG_TRACKING_OUTAGE_S=60`); not run parameters: they change no result."""

    tracking_outage_s: float = param(600.0, "longest tracking-server outage a training run "
                                            "rides out (its metrics and sample grids wait "
                                            "beside the checkpoint); past it the run stops, "
                                            "checkpoint kept, for --resume")
    tracking_probe_s: float = param(2.0, "seconds a probe of the tracking server waits")
    claim_heartbeat_s: float = param(30.0, "seconds between heartbeats of a claimed stage run")
    claim_stale_s: float = param(300.0, "a claimed stage run silent this long (or whose process "
                                        "on this host is gone) is dead: a waiting study "
                                        "launches the stage itself")
    claim_poll_s: float = param(2.0, "seconds between looks of a study waiting for a stage "
                                     "that another study runs")

    @classmethod
    def from_env(cls) -> Reliability:
        values = {}
        for f in fields(cls):
            name = RELIABILITY_ENV_PREFIX + f.name.upper()
            text = os.environ.get(name, "").strip()
            if not text:
                continue
            try:
                values[f.name] = float(text)
            except ValueError as exc:
                raise PneumoniaAugError(f"{name}={text!r} is not a number of seconds") from exc
            if values[f.name] <= 0:
                raise PneumoniaAugError(f"{name} must be positive, not {text}")
        return cls(**values)

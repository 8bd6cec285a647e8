"""Every run configuration, each field with its default and its help text.

Defaults are the paper's values (Tung et al., section 3) or the authors' code where the two
disagree (docs/protocol.md decides); each says where it comes from. The CLI builds its options
from these fields (`cli/options.py`), MLproject repeats the user-facing ones (a test
checks they agree), and the resolved config is logged as run params and saved in every
checkpoint. Nothing here imports torch, so `pneumonia-aug --help` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from pneumonia_aug.config.fields import Config, check, coerce_fields, param
from pneumonia_aug.config.lr import (
    AUTHORS_GAN_BATCH_SIZE,
    LR_SCALING_RULES,
    PAPER_BATCH_SIZE,
    scale_lr,
)
from pneumonia_aug.config.profiles import GAN_SEEDS, PAPER, SHARED
from pneumonia_aug.contract import DEFAULT_CLASSIFIER_URI, GAN_CHOICES, Gan
from pneumonia_aug.diffaugment_policy import parse_policy
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.models.sizes import gan_stages
from pneumonia_aug.settings import parse_setting

EXPERIMENT_NAME = "pneumonia-aug"
PRETRAINED_CHOICES = ("none", "imagenet")
REAL_FRACTION_SCOPES = ("normal", "all")
REAL_SUBSETS = ("per_seed", "fixed")
# How a classifier run chooses its operating point on validation (evaluation/operating_point.py).
THRESHOLD_RULES = ("spec_at_sens95", "youden", "0.5")


EXPERIMENT_HELP = "MLflow experiment (when not launched by `mlflow run`)"
DATA_DIR_HELP = "Kermany folder ('' = $PNEUMONIA_AUG_DATA_DIR or data/chest_xray)"
CACHE_DIR_HELP = ("decoded images and validation splits ('' = $PNEUMONIA_AUG_CACHE_DIR or "
                  "~/.cache/pneumonia-aug)")
DEVICE_HELP = "auto (cuda when available), cpu or cuda"
SYSTEM_METRICS_HELP = ("log MLflow's system metrics (CPU, memory, disk, network; GPU where "
                       "NVML is present) as system/* every 10 s; MLflow's "
                       "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true also turns them on")


@dataclass
class ClassifierConfig(Config):
    """CheXNet on one setting (paper section 3.3; docs/protocol.md "Classifier")."""

    setting: str = param("Original-1.0-0.0", "{Original|DCGAN|CGAN}-{r}-{g}, e.g. DCGAN-1.0-0.6")
    seed: int = param(0, "seed of every random draw of the run: subsets, init, batches, "
                         "augmentation")
    split_seed: int = param(0, "seed of the validation split, shared by every setting")
    image_size: int = param(PAPER.image_size, "working image size in px, square (the GANs "
                                              "draw 256 px)")
    epochs: int = param(PAPER.classifier_epochs, "training epochs (paper: 100)")
    batch_size: int = param(PAPER.classifier_batch_size, "batch size (paper: 16)")
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
    gan_seeds: str = param(SHARED, "the GAN design this run is part of: per-seed (its images "
                                   "must come from a GAN trained, and drawn, with this run's "
                                   "seed: checked) or shared (one generated set for every "
                                   "seed); part of the comparison key", GAN_SEEDS)
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
        # Parsed once, here (a typo fails before anything else), and named canonically:
        # `DCGAN-1-0.6` is `DCGAN-1.0-0.6`.
        self.parsed_setting = parse_setting(self.setting)
        self.setting = self.parsed_setting.name
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
class GANConfig(Config):
    """A DCGAN or CGAN (paper section 3; docs/protocol.md "GANs")."""

    model: str = param(Gan.DCGAN.value, "dcgan (NORMAL only) or cgan (both classes, labelled)",
                       GAN_CHOICES)
    image_size: int = param(PAPER.image_size, "image size in px, 8 * 2**k (the authors' GANs: "
                                              "256)")
    epochs: int = param(PAPER.gan_epochs, "training epochs (authors' code: 500)")
    batch_size: int = param(PAPER.gan_batch_size, "batch size (authors' code: 128)")
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
    eval_images: int = param(PAPER.eval_images, "generated images per FID/KID evaluation and "
                                                "memorization check (not in the paper)")
    sample_every: int = param(PAPER.sample_every, "epochs between sample grids and FID/KID "
                                                  "evaluations (0 = never)")
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
class GenerateConfig(Config):
    """Draw NORMAL images from a registered generator (paper: 4000 per GAN)."""

    model: str = param(Gan.DCGAN.value, "which GAN: dcgan or cgan", GAN_CHOICES)
    model_uri: str = param("", "generator to draw from ('' = "
                               "models:/pneumonia-<model>-generator@newest)")
    n_images: int = param(PAPER.n_images, "images to draw (paper: 4000)")
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


@dataclass
class QualityConfig(Config):
    """GAN quality measured into a GAN run after it trained: FID/KID of the images it drew at
    each sampled epoch, and the memorization check, in an X-ray classifier's feature space
    (not in the paper)."""

    gan_run_id: str = param("", "the train_gan run to measure (it keeps the images it drew)")
    feature_model_uri: str = param(DEFAULT_CLASSIFIER_URI, "X-ray classifier whose features "
                                                           "FID/KID use")
    device: str = param("auto", DEVICE_HELP)
    # Below these, distances in a network's features say nothing about image quality (a 32 px
    # network's FID jumps by a factor of four between evaluations: docs/stages.md).
    min_feature_image_size: int = param(64, "measure only in a network trained on images of at "
                                            "least this many px")
    min_feature_auroc: float = param(0.9, "measure only in a network whose validation AUROC at "
                                          "its kept epoch is at least this")

    def __post_init__(self) -> None:
        coerce_fields(self)
        check([(bool(self.gan_run_id), "give the train_gan run to measure: --gan-run-id RUN"),
               (bool(self.feature_model_uri), "give the feature network: --feature-model-uri "
                                              "models:/pneumonia-chexnet/VERSION")])


COMPARE_SOURCES = ("study", "experiment")
PLANNED_LOOKS = 4  # looks of a plan, equally spaced: at N/4, N/2, 3N/4 and N pairs


@dataclass
class CompareConfig(Config):
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
    planned_seeds: int = param(0, "seeds (pairs) planned for each GAN row before its runs: "
                                  "the table then says 'interim: k of N' and decides only at "
                                  "planned looks, with t boundaries from O'Brien-Fleming "
                                  "spending (0 = no plan: every p as it stands)")
    planned_looks: int = param(PLANNED_LOOKS, "looks of the plan, equally spaced over "
                                              "planned_seeds (its last at planned_seeds)")

    def __post_init__(self) -> None:
        coerce_fields(self)
        check([(self.planned_seeds >= 0, "planned_seeds must be >= 0 (0 = no plan)"),
               (self.planned_looks >= 1, "planned_looks must be at least 1"),
               (not 0 < self.planned_seeds < 2 * self.planned_looks,
                f"planned_seeds {self.planned_seeds} cannot hold {self.planned_looks} looks: "
                f"plan at least {2 * self.planned_looks} seeds (2 more pairs per look), or "
                "fewer looks")])


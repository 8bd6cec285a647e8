"""The names stages share: the contract between `train_gan`, `generate`, `train_classifier`,
`compare`, `study` and whoever reads their runs (docs/stages.md documents them).

Stage names, tag keys, metric names, artifact paths, registered model names and default model
URIs are defined here once; stages and compare read them from here only. Changing a value here
changes what old runs are found by, so treat every string below as a published name (metric
names changed once: `current_metrics` reads the runs logged before).
"""

from __future__ import annotations

from enum import Enum


class Gan(str, Enum):
    """A GAN of the study. The value (`dcgan`) is what users type; `display` (`DCGAN`) is the
    name in setting names, run tags and reports."""

    DCGAN = "dcgan"  # learns the NORMAL images only
    CGAN = "cgan"  # learns both classes, conditioned on the label

    @property
    def display(self) -> str:
        return self.name

    @classmethod
    def parse(cls, text: str) -> Gan:
        """`dcgan`, `DCGAN` or a `Gan` -> the `Gan`; ValueError naming the choices otherwise."""
        if isinstance(text, cls):
            return text
        for gan in cls:
            if str(text).lower() in (gan.value, gan.name.lower()):
                return gan
        raise ValueError(f"model must be one of {[g.value for g in cls]}, not {text!r}")


GAN_CHOICES = tuple(g.value for g in Gan)

# ---- stage names (the tag `stage` of every run, and the MLproject entry points) ------------
TRAIN_CLASSIFIER = "train_classifier"
TRAIN_GAN = "train_gan"
GENERATE = "generate"
COMPARE = "compare"
STUDY = "study"
GAN_QUALITY = "gan_quality"  # measures a GAN run's images into that run; no run of its own

# ---- run tags -----------------------------------------------------------------------------
# Tags a user filters the runs table by (docs/stages.md, "Tags"); a config field that is also a
# param (`setting`, `seed`) is a tag in its canonical spelling (the param keeps what was typed).
TAG_STAGE = "stage"
TAG_SETTING = "setting"
TAG_GAN = "gan"  # display name (`DCGAN`), `none` for Original settings
TAG_SEED = "seed"
TAG_REAL_FRACTION = "real_fraction"  # a classifier's r; a GAN's, when it learned from a subset
TAG_SYNTHETIC_FRACTION = "synthetic_fraction"
# A GAN setting's GAN design: per-seed (its images from a GAN of its own seed) or shared (one
# generated set for every seed); a param too, and a part of the comparison key.
TAG_GAN_SEEDS = "gan_seeds"
TAG_DEBUG_SUBSET = "debug_subset"
TAG_MODEL_VERSION = "registered_model_version"
TAG_CHAMPION_VERSION = "champion_version"  # `@champion` once a classifier run registered
TAG_GENERATOR_VERSION = "generator_version"  # on a generate run: the version it drew from
TAG_FID_FEATURE_MODEL_URI = "fid_feature_model_uri"  # a GAN run's X-ray feature network
TAG_FID_FEATURE_MODEL_VERSION = "fid_feature_model_version"
TAG_QUALITY_SKIPPED = "quality_skipped"  # on a GAN run: why its quality was not measured
TAG_QUALITY_SKIPPED_IN = "quality_skipped_in"  # ... in which feature network
TAG_RESUMED_AFTER = "resumed_after_epoch"
TAG_FAILURE_REASON = "failure_reason"  # on a FAILED or KILLED run: its error, one line
# Image counts: what a run trained and was tested on (counts, not measures of the model: tags,
# not charts). A GAN run's `n_train` is what it trained on, its debug cap applied.
N_TRAIN, N_VAL, N_TEST = "n_train", "n_val", "n_test"
N_TRAIN_GENERATED = "n_train_generated"  # a GAN setting's generated NORMAL images
N_TRAIN_REAL_NORMAL = "n_train_real_normal"
N_SKIPPED_FILES = "n_skipped_files"  # only where files were skipped (data/skipped_files.json)
# Tags the project reads (reuse, comparison, provenance): named for what reads them.
TAG_CODE_VERSION = "code_version"  # what run reuse and comparison groups go by (provenance.py)
TAG_DATASET_DIGEST = "dataset_digest"
TAG_SYNTHETIC_RUN = "synthetic_run_id"  # the generate run a GAN setting used (param: as asked)
TAG_GENERATED_SET = "generated_set"  # the digest of those images (evaluation.groups)
TAG_TRAIN_GAN_RUN = "train_gan_run_id"  # on a generate run: the GAN run it drew from
TAG_PRECISION = "precision"  # a classifier's training precision (bf16 on CUDA, fp32 on the CPU)
TAG_WORLD_SIZE = "world_size"
TAG_CPU_THREADS = "cpu_threads"  # torch's intra-op threads of a training run (provenance)
TAG_RUN_KEY = "reuse_key"  # the study's reuse key (study/reuse.py)
# A run's study is its parent run (`mlflow.parentRunId`); a run that a later study reused moves
# under that study, and keeps the study that launched it here.
TAG_LAUNCHED_BY_STUDY = "launched_by_study"
# The commit the code ran at: MLflow's own tag, which its UI shows as the run's source version.
TAG_GIT_COMMIT = "mlflow.source.git.commit"
# Claims (study/reuse.py): who runs a stage run, that it still lives, and what a loser yielded to.
TAG_CLAIM_OWNER = "claim.owner"  # host:pid:process start time
TAG_CLAIM_HEARTBEAT = "claim.heartbeat"  # unix seconds of the owner's last sign of life
TAG_DUPLICATE_OF = "claim.duplicate_of"  # on a deleted losing run: the run it gave way to
# Tags of runs made before the names above; read (never written) so those runs stay readable.
OLDER_TAG_GIT_COMMIT = "git_commit"
OLDER_TAG_STUDY_RUN = "study_run_id"

# ---- metric names -------------------------------------------------------------------------
# MLflow's UI draws a run's charts in one section per prefix before the "/" (`epoch/loss_train`
# is the chart `loss_train` of the section `epoch`), sections and the charts in each in
# alphabetical order; names without a "/" all fall into one section ("Model metrics"). So every
# metric here has a section, and the per-epoch curves the first one (`epoch`), their losses
# first in it. Each value is logged once: counts are tags (above) or tables, not charts.
EPOCH = "epoch"  # per epoch: the losses, the lr, the classifier's validation metrics at 0.5
MODEL = "model"  # once: what validation chose for the model (the epoch kept, threshold, T)
QUALITY = "quality"  # a GAN's FID/KID (per evaluation epoch) and memorization check
TEST = "test"  # once: the kept weights on test at 0.5 (Table 1), calibration, ROC points
TEST_OP = "test_op"  # once: on test at the chosen threshold, calibrated (what is served)
TRAIN = "train"  # once: a classifier's training seconds


def metric(section: str, name: str) -> str:
    """`test/accuracy`: the metric `name` in the UI's chart section `section`."""
    return f"{section}/{name}"


def val_metric(measure: str) -> str:
    """`epoch/val_accuracy`: a validation measure (evaluation.metrics' names), per epoch."""
    return metric(EPOCH, f"val_{measure}")


TRAIN_LOSS, VAL_LOSS = metric(EPOCH, "loss_train"), metric(EPOCH, "loss_val")
LR_SCALE = metric(EPOCH, "lr_scale")  # the lr over the lr Adam started with (lr_effective)
TRAIN_SECONDS = metric(TRAIN, "seconds")  # a classifier's epochs, validation included
# What validation chose: the registered model holds these weights and applies these values.
CHOSEN_EPOCH = metric(MODEL, "epoch")  # the epoch of lowest validation loss: its weights kept
CHOSEN_VAL_LOSS = metric(MODEL, "val_loss")  # that epoch's validation loss
CHOSEN_THRESHOLD = metric(MODEL, "threshold")  # served as THRESHOLD_KEY (below)
CHOSEN_TEMPERATURE = metric(MODEL, "temperature")  # served as TEMPERATURE_KEY
TEST_ACCURACY, TEST_RECALL = metric(TEST, "accuracy"), metric(TEST, "recall")
TEST_AUROC = metric(TEST, "auroc")
TEST_OP_RECALL = metric(TEST_OP, "recall")
VAL_AUROC = val_metric("auroc")  # per epoch
# a GAN run's, per epoch: losses and the discriminator's mean outputs on real and generated
D_LOSS, G_LOSS = metric(EPOCH, "d_loss"), metric(EPOCH, "g_loss")
D_REAL, D_FAKE = metric(EPOCH, "d_real"), metric(EPOCH, "d_fake")
FID_XRAY, KID_XRAY = metric(QUALITY, "fid_xray"), metric(QUALITY, "kid_xray")
KID_XRAY_STD = metric(QUALITY, "kid_xray_std")
NN_DISTANCE_MIN = metric(QUALITY, "nn_distance_min")
NN_DISTANCE_MEDIAN = metric(QUALITY, "nn_distance_median")

# Older runs' names, read as today's so that every reader takes runs of any version. First the
# flat names (before chart sections), then the first sections (`train/loss`, `val/auroc`,
# `chosen/epoch`); renamed ones here, the others by their old prefix. Metrics no longer logged
# keep their last name: `train/lr` (the lr itself), `data/n_*` (now tags: `image_count`),
# `test/tn` and the like (now predictions/confusion.csv), `*_low`/`*_high` (test_subgroups.csv)
# and MLflow's evaluation's `test_op_accuracy_score` and the like.
DATA = "data"  # the section older runs logged image counts in
MLFLOW_EVALUATION_METRICS = tuple("test_op_" + name for name in (
    "accuracy_score", "precision_score", "recall_score", "f1_score", "true_negatives",
    "false_positives", "false_negatives", "true_positives", "example_count"))
_RENAMED = {"train_loss": TRAIN_LOSS, "val_loss": VAL_LOSS, "lr": metric(TRAIN, "lr"),
            "train_seconds": TRAIN_SECONDS, "best_epoch": CHOSEN_EPOCH,
            "best_val_loss": CHOSEN_VAL_LOSS, "threshold": CHOSEN_THRESHOLD,
            "temperature": CHOSEN_TEMPERATURE, "d_loss": D_LOSS, "g_loss": G_LOSS,
            "d_real": D_REAL, "d_fake": D_FAKE, "fid_xray": FID_XRAY, "kid_xray": KID_XRAY,
            "kid_xray_std": KID_XRAY_STD, "nn_distance_min": NN_DISTANCE_MIN,
            "nn_distance_median": NN_DISTANCE_MEDIAN,
            "train/loss": TRAIN_LOSS, "val/loss": VAL_LOSS, "train/d_loss": D_LOSS,
            "train/g_loss": G_LOSS, "train/d_real": D_REAL, "train/d_fake": D_FAKE}
_FLAT_PREFIXES = (("test_op_", f"{TEST_OP}/"), ("test_", f"{TEST}/"), ("val_", f"{EPOCH}/val_"),
                  ("n_", f"{DATA}/n_"))
_SECTION_PREFIXES = (("val/", f"{EPOCH}/val_"), ("chosen/", f"{MODEL}/"))


def current_metric_name(key: str) -> str:
    """Today's name of a metric a run logged: `test_accuracy` and `val/auroc` -> `test/accuracy`
    and `epoch/val_auroc`; a name of today, MLflow's (`system/...`, its evaluation's) or one
    never renamed stays as it is."""
    if key in _RENAMED:
        return _RENAMED[key]
    if key in MLFLOW_EVALUATION_METRICS:
        return key
    for old, new in _SECTION_PREFIXES if "/" in key else _FLAT_PREFIXES:
        if key.startswith(old):
            return new + key.removeprefix(old)
    return key


def current_metrics(metrics: dict) -> dict:
    """A run's metrics (`run.data.metrics`) under today's names, whichever version logged
    them: what every reader of run metrics goes through. Where a run has a value under both
    names, today's wins."""
    return {current_metric_name(k): v for k, v in metrics.items()
            if current_metric_name(k) == k or current_metric_name(k) not in metrics}


def logged_metric_name(name: str, logged) -> str:
    """The name a run logged today's metric `name` under (`logged`: the run's metric names):
    `name` itself, or its older name; for reading the metric's history."""
    if name in logged:
        return name
    return next((k for k in logged if current_metric_name(k) == name), name)


def older_metric_names(logged) -> list[str]:
    """Those of `logged` (a run's metric names) that are older names of today's metrics."""
    return sorted(k for k in logged if current_metric_name(k) != k)


def image_count(tags: dict, metrics: dict, name: str) -> float | None:
    """An image count of a run (`N_TRAIN`, ...): its tag, or the metric `data/<name>` of a run
    made before counts were tags (`metrics` under today's names: `current_metrics`); None when
    the run has neither."""
    value = tags.get(name, metrics.get(metric(DATA, name)))
    return None if value is None else float(value)


# ---- artifact paths -----------------------------------------------------------------------
CONFIG_ARTIFACT = "config.json"  # the resolved config of every training run
MANIFESTS_DIR = "manifests"
PLOTS_DIR = "plots"
PREDICTIONS_ARTIFACT = "predictions/test_predictions.csv"  # per-image test probabilities
SUBGROUPS_ARTIFACT = "predictions/test_subgroups.csv"  # recall on bacterial / viral pneumonia
SKIPPED_ARTIFACT = "data/skipped_files.json"
CHECKPOINTS_DIR = "checkpoints"
GENERATED_DIR = "generated"  # a generate run's PNGs, read by GAN settings
# A GAN run's images drawn for quality, measured once a feature network is known
# (stages/gan_quality.py): `epoch_XXXX.npz` per sampled epoch, and the memorization set.
EVAL_IMAGES_DIR = "quality/eval_images"
MEMORIZATION_IMAGES = "memorization.npz"
STUDY_RUNS_ARTIFACT = "study/runs.json"  # the runs a study used, reused ones included
TABLE_MD, TABLE_CSV, TABLE_HTML = "table1.md", "table1.csv", "table1.html"
ACCURACY_PLOT = "accuracy.png"
TABLE_OUTPUTS = (TABLE_MD, TABLE_CSV, TABLE_HTML, ACCURACY_PLOT)
FOREST_PLOT = "forest.png"  # compare's picture of the claim (logged, kept in the store)
# A classifier run's confusion cells at 0.5 and at its served threshold (counts: a table)
CONFUSION_ARTIFACT = "predictions/confusion.csv"

# ---- registry -----------------------------------------------------------------------------
CLASSIFIER_MODEL = "pneumonia-chexnet"
CHAMPION = "champion"  # the classifier version the champion gate let in (serving/champion.py)
# The newest version of each generator. MLflow reserves the alias name `latest` (its own
# `models:/NAME/latest` URI means the highest version number), hence `newest`.
NEWEST = "newest"
DEFAULT_CLASSIFIER_URI = f"models:/{CLASSIFIER_MODEL}@{CHAMPION}"

# PNEUMONIA is the positive class, called at probability >= 0.5 (docs/protocol.md). Here rather
# than in `evaluation.metrics` because a registered classifier ships it (few, light modules).
THRESHOLD = 0.5
# A classifier run's operating point and temperature, chosen and fitted on validation: logged as
# the metrics CHOSEN_THRESHOLD and CHOSEN_TEMPERATURE and saved under these keys in the
# registered version's config, which the served model applies. A version saved without them
# answers at T = 1 and 0.5.
THRESHOLD_KEY = "threshold"
TEMPERATURE_KEY = "temperature"
TEMPERATURE = 1.0  # no scaling

# The paper generates 4000 NORMAL images per GAN.
N_GENERATED = 4000


# ---- run names ----------------------------------------------------------------------------
# The UI's runs table shows about the first 12 characters of a name (less for a nested run): a
# name says in those what the run is, compactly, then its seed, so that no two runs of a study
# look alike there (`DC1+.6 s0`: DCGAN-1.0-0.6, seed 0). Names are for people: runs are found
# by their tags (`stage`, `setting`, `seed`), never by name.
NAME_WIDTH = 12
_SHORT = {"Original": "Orig", "DCGAN": "DC", "CGAN": "CG"}


def _fraction(x: float) -> str:
    """A fraction as the settings grammar also reads it, shortest: 1.0 -> `1`, 0.3 -> `.3`."""
    text = f"{float(x):g}"
    return text[1:] if text.startswith("0.") else text


def classifier_run_name(setting, seed: int) -> str:
    """`DC1+.6 s0` (DCGAN-1.0-0.6: all real images + 60% of the generated ones, seed 0),
    `Orig.3 s2` (Original-0.3-0.0, seed 2). `setting`: a `settings.Setting`."""
    added = f"+{_fraction(setting.synthetic_fraction)}" if setting.synthetic_fraction else ""
    return f"{_SHORT[setting.source]}{_fraction(setting.real_fraction)}{added} s{seed}"


def _gan_short(gan: Gan | str, real_fraction: float) -> str:
    subset = _fraction(real_fraction) if float(real_fraction) < 1 else ""
    return f"{_SHORT[Gan.parse(gan).display]}{subset}"


def gan_run_name(gan: Gan | str, real_fraction: float, seed: int) -> str:
    """`GAN DC s0`; `GAN DC.3 s0` for a GAN of the real subset an r = 0.3 setting keeps."""
    return f"GAN {_gan_short(gan, real_fraction)} s{seed}"


def generate_run_name(gan: Gan | str, real_fraction: float, seed: int) -> str:
    """`gen DC s0`: images drawn with seed 0 from a DCGAN (of all real images)."""
    return f"gen {_gan_short(gan, real_fraction)} s{seed}"


def generator_model_name(gan: Gan | str) -> str:
    """`pneumonia-dcgan-generator` / `pneumonia-cgan-generator`."""
    return f"pneumonia-{Gan.parse(gan).value}-generator"


def newest_generator_uri(gan: Gan | str) -> str:
    return f"models:/{generator_model_name(gan)}@{NEWEST}"

# ---- serving: the registered classifier's request and response columns --------------------
IMAGE_COLUMN = "image"  # request: one base64-encoded image file per row
# response: the calibrated probability, the label at the version's threshold, that threshold
PROBABILITY_COLUMN, LABEL_COLUMN, THRESHOLD_COLUMN = "probability", "label", "threshold"
ERROR_COLUMN = "error"

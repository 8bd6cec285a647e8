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
TAG_STAGE = "stage"
TAG_SETTING = "setting"
TAG_GAN = "gan"  # display name (`DCGAN`), `none` for Original settings
TAG_SEED = "seed"
TAG_GIT_COMMIT = "git_commit"  # provenance: the commit the code ran at
TAG_CODE_VERSION = "code_version"  # what run reuse and comparison groups go by (provenance.py)
TAG_DATASET_DIGEST = "dataset_digest"
TAG_SYNTHETIC_RUN = "synthetic_run_id"  # the generate run whose images a GAN setting added
TAG_GENERATED_SET = "generated_set"  # the digest of those images (evaluation.groups)
TAG_CPU_THREADS = "cpu_threads"  # torch's intra-op threads of a training run (provenance)
TAG_DEBUG_SUBSET = "debug_subset"
TAG_WORLD_SIZE = "world_size"
TAG_MODEL_VERSION = "registered_model_version"
TAG_RUN_KEY = "run_key"  # the study's reuse key
TAG_STUDY_RUN = "study_run_id"
TAG_RESUMED_AFTER = "resumed_after_epoch"
# Claims (study/reuse.py): who runs a stage run, that it still lives, and what a loser yielded to.
TAG_CLAIM_OWNER = "claim.owner"  # host:pid:process start time
TAG_CLAIM_HEARTBEAT = "claim.heartbeat"  # unix seconds of the owner's last sign of life
TAG_DUPLICATE_OF = "claim.duplicate_of"  # on a deleted losing run: the run it gave way to
TAG_TRAIN_GAN_RUN = "train_gan_run_id"  # on a generate run: the GAN run it drew from
TAG_FAILURE_REASON = "failure_reason"  # on a FAILED or KILLED run: its error, one line
# On a GAN run whose quality was measured (stages/gan_quality.py): the feature network, by the
# URI asked for and the version it meant; or why it was not measured.
TAG_FEATURE_MODEL_URI = "fid_feature_model_uri"
TAG_FEATURE_MODEL_VERSION = "fid_feature_model_version"
TAG_QUALITY_SKIPPED = "quality_skipped"
TAG_GAN_SEEDS = "gan_seeds"  # a study's GAN design (per-seed or shared)

# ---- metric names -------------------------------------------------------------------------
# MLflow's UI draws a run's charts in one section per prefix before the "/" (`train/loss` is
# the chart `loss` of the section `train`), sections in alphabetical order; names without a
# "/" all fall into one section ("Model metrics"). So every metric here has a section:
TRAIN = "train"  # per epoch: the losses and the lr; once: training seconds
VAL = "val"  # per epoch: the classifier's validation loss and metrics at 0.5
CHOSEN = "chosen"  # once: what validation chose (the epoch kept, threshold, temperature)
TEST = "test"  # once: the kept weights on test at 0.5 (Table 1), calibration, ROC points
TEST_OP = "test_op"  # once: on test at the chosen threshold, calibrated (what is served)
DATA = "data"  # once: image counts
QUALITY = "quality"  # a GAN's FID/KID (per evaluation epoch) and memorization check


def metric(section: str, name: str) -> str:
    """`test/accuracy`: the metric `name` in the UI's chart section `section`."""
    return f"{section}/{name}"


TRAIN_LOSS, TRAIN_LR = metric(TRAIN, "loss"), metric(TRAIN, "lr")
TRAIN_SECONDS = metric(TRAIN, "seconds")  # a classifier's epochs, validation included
VAL_LOSS = metric(VAL, "loss")  # and `val/<measure>` per epoch (evaluation.metrics' measures)
CHOSEN_EPOCH = metric(CHOSEN, "epoch")  # the epoch of lowest validation loss: its weights kept
CHOSEN_VAL_LOSS = metric(CHOSEN, "val_loss")  # that epoch's validation loss
CHOSEN_THRESHOLD = metric(CHOSEN, "threshold")  # served as THRESHOLD_KEY (below)
CHOSEN_TEMPERATURE = metric(CHOSEN, "temperature")  # served as TEMPERATURE_KEY
TEST_ACCURACY, TEST_RECALL = metric(TEST, "accuracy"), metric(TEST, "recall")
TEST_AUROC = metric(TEST, "auroc")
TEST_OP_RECALL = metric(TEST_OP, "recall")
VAL_AUROC = metric(VAL, "auroc")  # per epoch
# a GAN run's, per epoch: losses and the discriminator's mean outputs on real and generated
D_LOSS, G_LOSS = metric(TRAIN, "d_loss"), metric(TRAIN, "g_loss")
D_REAL, D_FAKE = metric(TRAIN, "d_real"), metric(TRAIN, "d_fake")
FID_XRAY, KID_XRAY = metric(QUALITY, "fid_xray"), metric(QUALITY, "kid_xray")
KID_XRAY_STD = metric(QUALITY, "kid_xray_std")
NN_DISTANCE_MIN = metric(QUALITY, "nn_distance_min")
NN_DISTANCE_MEDIAN = metric(QUALITY, "nn_distance_median")
N_TRAIN, N_SKIPPED_FILES = metric(DATA, "n_train"), metric(DATA, "n_skipped_files")
N_IMAGES = metric(DATA, "n_images")  # a generate run's
# MLflow's own classifier evaluation (`tracking.evaluate_predictions`) cannot put its metrics
# in a section: MLflow 3.17 doubles a prefix holding "/" (`p/accuracy_score/p/accuracy_score`)
# and loses its confusion matrix. Its metrics keep this flat prefix ("Model metrics").
MLFLOW_EVALUATION_PREFIX = "test_op_"
MLFLOW_EVALUATION_METRICS = tuple(MLFLOW_EVALUATION_PREFIX + name for name in (
    "accuracy_score", "precision_score", "recall_score", "f1_score", "true_negatives",
    "false_positives", "false_negatives", "true_positives", "example_count"))

# Runs logged before the sections used flat names (`val_loss`, `test_accuracy`, `n_train`):
# renamed ones here, the others by their old prefix.
_RENAMED = {"train_loss": TRAIN_LOSS, "lr": TRAIN_LR, "train_seconds": TRAIN_SECONDS,
            "best_epoch": CHOSEN_EPOCH, "best_val_loss": CHOSEN_VAL_LOSS,
            "threshold": CHOSEN_THRESHOLD, "temperature": CHOSEN_TEMPERATURE,
            "d_loss": D_LOSS, "g_loss": G_LOSS, "d_real": D_REAL, "d_fake": D_FAKE,
            "fid_xray": FID_XRAY, "kid_xray": KID_XRAY, "kid_xray_std": KID_XRAY_STD,
            "nn_distance_min": NN_DISTANCE_MIN, "nn_distance_median": NN_DISTANCE_MEDIAN}
_OLD_PREFIXES = (("test_op_", f"{TEST_OP}/"), ("test_", f"{TEST}/"), ("val_", f"{VAL}/"),
                 ("n_", f"{DATA}/n_"))


def current_metric_name(key: str) -> str:
    """Today's name of a metric a run logged: `test_accuracy` -> `test/accuracy`; a name of
    today, MLflow's (`system/...`, its evaluation's) or one never renamed stays as it is."""
    if "/" in key or key in MLFLOW_EVALUATION_METRICS:
        return key
    if key in _RENAMED:
        return _RENAMED[key]
    for old, new in _OLD_PREFIXES:
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
TABLE_OUTPUTS = ("table1.md", "table1.csv", "table1.html", "accuracy.png")
FOREST_PLOT = "forest.png"  # compare's picture of the claim (logged, kept in the store)

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


def run_name(seed: int, what: str) -> str:
    """A stage run's name, seed first (`s0 DCGAN-1.0-0.6`): the UI's runs table cuts long names
    at the end, and two seeds of one setting must not look alike there. Names are for people:
    runs are found by their tags (`stage`, `setting`, `seed`), never by name."""
    return f"s{seed} {what}"


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

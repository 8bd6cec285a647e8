"""The names stages share: the contract between `train_gan`, `generate`, `train_classifier`,
`compare`, `study` and whoever reads their runs (docs/stages.md documents them).

Stage names, tag keys, artifact paths, registered model names and default model URIs are
defined here once; stages and compare read them from here only. Changing a value here changes
what old runs are found by, so treat every string below as a published name.
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

# ---- artifact paths -----------------------------------------------------------------------
CONFIG_ARTIFACT = "config.json"  # the resolved config of every training run
MANIFESTS_DIR = "manifests"
PLOTS_DIR = "plots"
PREDICTIONS_ARTIFACT = "predictions/test_predictions.csv"  # per-image test probabilities
SUBGROUPS_ARTIFACT = "predictions/test_subgroups.csv"  # recall on bacterial / viral pneumonia
SKIPPED_ARTIFACT = "data/skipped_files.json"
CHECKPOINTS_DIR = "checkpoints"
GENERATED_DIR = "generated"  # a generate run's PNGs, read by GAN settings
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
# metrics under these names and saved under the same keys in the registered version's config,
# which the served model applies. A version saved without them answers at T = 1 and 0.5.
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

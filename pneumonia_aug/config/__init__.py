"""The configs, each field with its default and help text, written once; nothing here imports
torch (`pneumonia-aug --help` stays fast). `from pneumonia_aug.config import NAME` gives each
public name of the modules:

- `fields.py`: the field machinery (`param`, coercion of `mlflow run -P` strings, checks);
- `lr.py`: the paper's reference batch sizes and the learning-rate scaling rules;
- `runs.py`: the run configs (classifier, GAN, GAN quality, generate, compare) and their
  choices; `study.py`: the study's (seeds and settings parsed once, the GAN design);
- `profiles.py`: the study's profiles, the paper's among them (the run configs' defaults);
- `limits.py`: the machine's limits read from the environment (`Reliability`);
- `champion.py`: when a new classifier version takes the champion alias (`ChampionGate`);
- `allocation.py`: one time-limited run on a GPU machine (the kit's budget, the dry run's plan).
"""

from pneumonia_aug.config.allocation import (
    ALLOCATION_STUDY_S,
    DEFAULT_BUDGET_S,
    PACK_RESERVE_S,
)
from pneumonia_aug.config.champion import ChampionGate
from pneumonia_aug.config.fields import Config, check, coerce_fields, param, to_bool
from pneumonia_aug.config.limits import RELIABILITY_ENV_PREFIX, Reliability
from pneumonia_aug.config.lr import (
    AUTHORS_GAN_BATCH_SIZE,
    LR_SCALING_RULES,
    PAPER_BATCH_SIZE,
    scale_lr,
)
from pneumonia_aug.config.profiles import (
    CLAIM_SETTINGS,
    GAN_SEEDS,
    PAPER,
    PER_SEED,
    PROFILES,
    SHARED,
    Profile,
)
from pneumonia_aug.config.runs import (
    CACHE_DIR_HELP,
    COMPARE_SOURCES,
    DATA_DIR_HELP,
    DEVICE_HELP,
    EXPERIMENT_HELP,
    EXPERIMENT_NAME,
    PLANNED_LOOKS,
    PRETRAINED_CHOICES,
    REAL_FRACTION_SCOPES,
    REAL_SUBSETS,
    SYSTEM_METRICS_HELP,
    THRESHOLD_RULES,
    ClassifierConfig,
    CompareConfig,
    GANConfig,
    GenerateConfig,
    QualityConfig,
)
from pneumonia_aug.config.study import EXECUTORS, StudyConfig

__all__ = [
    "ALLOCATION_STUDY_S", "AUTHORS_GAN_BATCH_SIZE", "CACHE_DIR_HELP", "CLAIM_SETTINGS",
    "COMPARE_SOURCES", "DEFAULT_BUDGET_S", "PACK_RESERVE_S",
    "DATA_DIR_HELP", "DEVICE_HELP", "EXECUTORS", "EXPERIMENT_HELP", "EXPERIMENT_NAME",
    "LR_SCALING_RULES", "PAPER", "PAPER_BATCH_SIZE", "PLANNED_LOOKS", "PRETRAINED_CHOICES",
    "PROFILES", "REAL_FRACTION_SCOPES", "REAL_SUBSETS", "RELIABILITY_ENV_PREFIX",
    "SYSTEM_METRICS_HELP", "THRESHOLD_RULES", "ChampionGate", "ClassifierConfig",
    "CompareConfig", "Config", "GANConfig", "GAN_SEEDS", "GenerateConfig", "PER_SEED", "Profile",
    "QualityConfig", "Reliability", "SHARED", "StudyConfig", "check", "coerce_fields", "param",
    "scale_lr", "to_bool",
]

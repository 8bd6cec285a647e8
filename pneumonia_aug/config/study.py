"""The study's config: which profile, seeds, settings and GAN design a study runs, and where.

Seeds and settings are parsed once, here, when the config is made (`seed_list`,
`setting_list`): a typo fails before anything else happens.
"""

from __future__ import annotations

from dataclasses import dataclass

from pneumonia_aug.config.fields import Config, check, coerce_fields, param
from pneumonia_aug.config.profiles import GAN_SEEDS, PROFILES, Profile
from pneumonia_aug.config.runs import (
    DATA_DIR_HELP,
    EXPERIMENT_HELP,
    EXPERIMENT_NAME,
    REAL_SUBSETS,
    SYSTEM_METRICS_HELP,
)
from pneumonia_aug.settings import Setting, parse_seeds, parse_settings

EXECUTORS = ("local", "ray")


@dataclass
class StudyConfig(Config):
    """The whole study: every stage a profile needs, as runs nested under one parent run."""

    profile: str = param("quick", "claim (the paper's headline pair at 128 px over its planned "
                                  "seeds, on a GPU), paper (256 px, 500 GAN / 100 classifier "
                                  "epochs), short (minutes on one GPU), medium (an hour on 2 "
                                  "CPU cores), quick (CPU smoke test) or tiny (tests)",
                         tuple(PROFILES))
    seeds: str = param("", "classifier seeds, comma-separated integers or ranges (0,1,2 or "
                           "0-33; '' = the profile's)")
    settings: str = param("", "table1 (the paper's 12 rows), all (+ the -1.0-1.0 rows), a "
                              "comma-separated list, or '' = the profile's (table1; short: the "
                              "claim's 5 rows; medium: its 4 DCGAN rows; claim: "
                              "Original-1.0-0.0 and DCGAN-1.0-0.6)")
    gan_seeds: str = param("", "per-seed: seed s of a GAN row draws from a GAN trained with "
                               "seed s and images drawn with seed s (each pair an independent "
                               "draw of the whole method); shared: every seed draws from one "
                               "GAN and one generated set (the question is then about that "
                               "set only); '' = the profile's (per-seed)", ("", *GAN_SEEDS))
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
    time_budget_s: float = param(0.0, "seconds the study may take from its process's start (0 "
                                      "= no limit): a seed starts only while its pair's "
                                      "estimated time still fits in what is left, so a study "
                                      "stopped at its limit leaves complete pairs, not half "
                                      "ones (it does not stop the study)")

    def __post_init__(self) -> None:
        coerce_fields(self)
        check([(self.max_parallel >= 0, "max_parallel must be >= 0 (0 = as many as fit)"),
               (self.time_budget_s >= 0, "time_budget_s must be >= 0 (0 = no limit)")])
        # Parsed once, here: a typo in --seeds or --settings fails before anything runs.
        self.seed_list: list[int] = parse_seeds(self.seeds or self.spec.seeds)
        self.setting_list: list[Setting] = parse_settings(self.settings or self.spec.settings)

    @property
    def spec(self) -> Profile:
        return PROFILES[self.profile]

    @property
    def design(self) -> str:
        """The GAN design the study runs: `per-seed` or `shared`."""
        return self.gan_seeds or self.spec.gan_seeds

    @property
    def planned_seeds(self) -> int:
        """Pairs the study plans (the profile's power analysis; 0: no plan)."""
        return self.spec.planned_seeds

"""The whole study as one resumable command: GANs, generation, every setting x seed, Table 1.

Every stage runs as an MLflow run nested under one parent run. Before launching a stage the
study looks for a FINISHED run with the same key: entry point, code version, parameters
(normalised, since MLflow returns params as strings) and upstream run ids. Found: reused.
Failed, interrupted or changed: run again. So an interrupted study continues where it
stopped, a second identical call launches nothing new, and a changed parameter reruns
exactly the runs that depend on it.

Order: the Original settings first (the best of them is the X-ray feature network that GAN
quality is measured with), then each GAN needed, its generation, the GAN settings, compare.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from pneumonia_aug import tracking
from pneumonia_aug.config import EXPERIMENT_NAME, ClassifierConfig
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.settings import PAPER_TABLE1, parse_setting
from pneumonia_aug.stages.compare import STUDY_RUNS_ARTIFACT
from pneumonia_aug.training.gan import GANConfig

log = logging.getLogger(__name__)
STAGE = "study"


@dataclass(frozen=True)
class Profile:
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


PROFILES = {
    # The paper: 256 px, 500 GAN epochs at batch 128, 100 classifier epochs at batch 16, 4000
    # generated images per GAN (sections 3.1-3.3 and the authors' code).
    "paper": Profile(256, 500, 128, 100, 16, 4000, sample_every=10),
    # Small enough for the whole study (one seed) on 2 CPU cores in under 20 minutes.
    "quick": Profile(32, 12, 64, 5, 32, 400, max_images_per_split=500, gan_max_images=512,
                     sample_every=4, eval_images=100),
    # For tests: the smallest thing that exercises every stage.
    "tiny": Profile(32, 1, 32, 1, 16, 20, max_images_per_split=40, gan_max_images=32,
                    sample_every=1, eval_images=8),
}


def parse_settings(text: str) -> list[str]:
    """`table1` (default): the paper's 12 rows; `all`: those plus the `-1.0-1.0` rows; or a
    comma-separated list of setting names."""
    if text in ("", "table1"):
        return list(PAPER_TABLE1)
    if text == "all":
        return list(PAPER_TABLE1) + ["CGAN-1.0-1.0", "DCGAN-1.0-1.0"]
    return [parse_setting(s).name for s in text.split(",") if s.strip()]


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError as exc:
        raise PneumoniaAugError(f"seeds must be comma-separated integers, not {text!r}") from exc
    if not seeds:
        raise PneumoniaAugError("give at least one seed, e.g. seeds=0,1,2")
    return seeds


class Study:
    """Runs or reuses each stage; remembers what it used and what failed."""

    def __init__(self, experiment_name: str, study_run_id: str):
        self.experiment_name = experiment_name
        self.study_run_id = study_run_id
        self.used: list[dict] = []
        self.failed: list[str] = []
        self.launched = 0

    def stage(self, name: str, label: str, params: dict, upstream: dict,
              launch: Callable[[], str]) -> str | None:
        key = tracking.run_key(name, params, upstream)
        run_id = tracking.find_reusable_run(self.experiment_name, key, params)
        if run_id:
            log.info("[study] %s: reusing finished run %s", label, run_id)
        else:
            log.info("[study] %s: launching", label)
            self.launched += 1
            try:
                run_id = launch()
            except PneumoniaAugError as exc:  # a failed stage is recorded, the study goes on
                log.error("[study] %s failed: %s", label, exc)
                self.failed.append(f"{label}: {exc}")
                return None
            tracking.tag_run(run_id, {tracking.RUN_KEY_TAG: key, "study_run_id": self.study_run_id})
        self.used.append({"stage": name, "label": label, "run_id": run_id})
        return run_id


def _classifier(study: Study, cfg: ClassifierConfig, upstream: dict) -> str | None:
    from pneumonia_aug.stages.train_classifier import run_train_classifier

    label = f"train_classifier {cfg.setting} seed {cfg.seed}"
    return study.stage("train_classifier", label, cfg.to_dict(), upstream,
                       lambda: run_train_classifier(cfg))


def _gan(study: Study, cfg: GANConfig) -> str | None:
    from pneumonia_aug.stages.train_gan import DEFAULT_FEATURE_MODEL, run_train_gan

    params = cfg.to_dict() | {"feature_model_uri": DEFAULT_FEATURE_MODEL}
    return study.stage("train_gan", f"train_gan {cfg.model}", params, {},
                       lambda: run_train_gan(cfg))


def _generate(study: Study, gan: str, gan_run: str, profile: Profile) -> str | None:
    from pneumonia_aug.stages.generate import run_generate

    version = tracking.run_info(gan_run).data.tags["registered_model_version"]
    uri = f"models:/{tracking.generator_model_name(gan)}/{version}"  # pinned, not an alias
    params = {"model": gan.lower(), "model_uri": uri, "n_images": profile.n_images, "seed": 0,
              "experiment_name": study.experiment_name}
    return study.stage("generate", f"generate {gan.lower()}", params, {"train_gan": gan_run},
                       lambda: run_generate(gan.lower(), uri, profile.n_images, 0,
                                            study.experiment_name))


def run_study(profile: str = "quick", seeds: str = "0,1,2", settings: str = "table1",
              data_dir: str = "", experiment_name: str = EXPERIMENT_NAME,
              output_dir: str = "outputs/study") -> str:
    """Run or resume the study; return the Markdown table."""
    if profile not in PROFILES:
        raise PneumoniaAugError(f"profile must be one of {sorted(PROFILES)}, not {profile!r}")
    spec, seed_list, names = PROFILES[profile], parse_seeds(seeds), parse_settings(settings)
    base = ClassifierConfig(image_size=spec.image_size, epochs=spec.classifier_epochs,
                            batch_size=spec.classifier_batch_size, data_dir=data_dir,
                            max_images_per_split=spec.max_images_per_split,
                            experiment_name=experiment_name)
    params = {"profile": profile, "seeds": seeds, "settings": settings, "data_dir": data_dir,
              "experiment_name": experiment_name}
    with tracking.start_run(experiment_name, run_name=f"study-{profile}",
                            tags={"stage": STAGE, "profile": profile,
                                  "git_commit": tracking.git_commit()}) as parent:
        tracking.log_params(params)
        study = Study(experiment_name, parent.info.run_id)
        gan_settings = [n for n in names if parse_setting(n).gan]
        for name in [n for n in names if not parse_setting(n).gan]:
            for seed in seed_list:
                _classifier(study, replace(base, setting=name, seed=seed), {})
        for gan in sorted({parse_setting(n).gan for n in gan_settings}):
            gan_cfg = GANConfig(model=gan.lower(), image_size=spec.image_size,
                                epochs=spec.gan_epochs, batch_size=spec.gan_batch_size,
                                data_dir=data_dir, max_images=spec.gan_max_images,
                                sample_every=spec.sample_every, eval_images=spec.eval_images,
                                experiment_name=experiment_name)
            gan_run = _gan(study, gan_cfg)
            generated = gan_run and _generate(study, gan, gan_run, spec)
            for name in [n for n in gan_settings if parse_setting(n).gan == gan]:
                for seed in seed_list:
                    if not generated:
                        study.failed.append(f"{name} seed {seed}: no generated images "
                                            f"({gan} failed)")
                        continue
                    cfg = replace(base, setting=name, seed=seed, synthetic_run_id=generated)
                    _classifier(study, cfg, {"generate": generated})
        table = _compare(study, names, output_dir)
        tracking.log_dict({"used": study.used, "failed": study.failed}, STUDY_RUNS_ARTIFACT)
        tracking.log_metrics({"runs_launched": study.launched, "runs_used": len(study.used),
                              "stages_failed": len(study.failed)})
        log.info("[study] %d stage runs used, %d launched now, %d failed", len(study.used),
                 study.launched, len(study.failed))
        if study.failed:
            log.warning("[study] failed stages:\n  %s", "\n  ".join(study.failed))
        return table


def _compare(study: Study, names: list[str], output_dir: str) -> str:
    from pneumonia_aug.stages.compare import run_compare

    classifier_runs = sorted(u["run_id"] for u in study.used if u["stage"] == "train_classifier")
    params = {"experiment_name": study.experiment_name, "settings": ",".join(names)}
    run_id = study.stage("compare", "compare", params, {"classifier_runs": classifier_runs},
                         lambda: run_compare(study.experiment_name, run_ids=classifier_runs,
                                             output_dir=output_dir, expected_settings=names,
                                             extra_params=params))
    return tracking.read_text_artifact(run_id, "table1.md") if run_id else ""

"""The whole study as one resumable command: GANs, generation, every setting x seed, Table 1.

Every stage runs as an MLflow run nested under one parent run. Before launching a stage the
study looks for a FINISHED run with the same key: entry point, code version, parameters
(normalised, since MLflow returns params as strings) and upstream run ids. Found: reused.
Failed, interrupted or changed: run again. So an interrupted study continues where it
stopped, a second identical call launches nothing new, and a changed parameter reruns
exactly the runs that depend on it.

Run reuse: `stages.reuse`. Order: the Original settings first (the one with the lowest
validation loss, pinned by version, is the X-ray feature network that GAN quality is measured
with), then each GAN needed, its generation, the GAN settings, compare.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from pneumonia_aug import tracking
from pneumonia_aug.config import (
    ClassifierConfig,
    CompareConfig,
    GANConfig,
    GenerateConfig,
    Profile,
    StudyConfig,
)
from pneumonia_aug.contract import (
    CLASSIFIER_MODEL,
    COMPARE,
    GENERATE,
    STUDY,
    STUDY_RUNS_ARTIFACT,
    TAG_MODEL_VERSION,
    TAG_STUDY_RUN,
    TRAIN_CLASSIFIER,
    TRAIN_GAN,
    Gan,
    generator_model_name,
)
from pneumonia_aug.data.kermany import check_layout, resolve_data_dir
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.settings import PAPER_TABLE1, parse_setting
from pneumonia_aug.stages import describe
from pneumonia_aug.stages.checkpoints import sigterm_as_interrupt
from pneumonia_aug.stages.reuse import claim_or_reuse, run_key
from pneumonia_aug.stages.runs import stage_tags

log = logging.getLogger(__name__)


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
        """Reuse or launch the stage; safe against a concurrent study (`reuse.claim_or_reuse`)."""
        key = run_key(name, params, upstream)
        try:
            claim = claim_or_reuse(self.experiment_name, key, params, launch, label=label,
                                   tags={TAG_STUDY_RUN: self.study_run_id},
                                   parent_run_id=self.study_run_id)
        except PneumoniaAugError as exc:  # a failed stage is recorded, the study goes on
            log.error("[study] %s failed: %s", label, exc)
            self.failed.append(f"{label}: {exc}")
            return None
        self.launched += claim.launched
        self.used.append({"stage": name, "label": label, "run_id": claim.run_id})
        return claim.run_id


def _key_params(cfg) -> dict:
    """The params a reusable run must match: all but `system_metrics` (what was watched while
    it ran, not what it computed)."""
    return {k: v for k, v in cfg.to_dict().items() if k != "system_metrics"}


def _classifier(study: Study, cfg: ClassifierConfig, upstream: dict) -> str | None:
    from pneumonia_aug.stages.train_classifier import run_train_classifier

    label = f"{TRAIN_CLASSIFIER} {cfg.setting} seed {cfg.seed}"
    return study.stage(TRAIN_CLASSIFIER, label, _key_params(cfg), upstream,
                       lambda: run_train_classifier(cfg))


def _gan(study: Study, cfg: GANConfig) -> str | None:
    from pneumonia_aug.stages.train_gan import run_train_gan

    label = f"{TRAIN_GAN} {cfg.model}" + (f" r={cfg.real_fraction}" if cfg.real_fraction < 1
                                           else "")
    return study.stage(TRAIN_GAN, label, _key_params(cfg), {},
                       lambda: run_train_gan(cfg))


def _generate(study: Study, gan: Gan, gan_run: str, profile: Profile) -> str | None:
    from pneumonia_aug.stages.generate import run_generate

    version = tracking.run_tags(gan_run)[TAG_MODEL_VERSION]
    uri = f"models:/{generator_model_name(gan)}/{version}"  # pinned, not an alias
    cfg = GenerateConfig(model=gan.value, model_uri=uri, n_images=profile.n_images, seed=0,
                         experiment_name=study.experiment_name)
    return study.stage(GENERATE, f"{GENERATE} {gan.value}", cfg.to_dict(), {TRAIN_GAN: gan_run},
                       lambda: run_generate(cfg))


def _gans_needed(gan_settings: list[str], real_subset: str) -> list[tuple[Gan, float]]:
    """(GAN, the real fraction it learns from) for each GAN the settings need: one per GAN
    learning from all real images (the authors' way), or with `real_subset=fixed` one per GAN
    and r, learning only from the real images the r settings keep."""
    needed = set()
    for name in gan_settings:
        setting = parse_setting(name)
        r = setting.real_fraction if real_subset == "fixed" else 1.0
        needed.add((Gan.parse(setting.gan), r))
    return sorted(needed, key=lambda pair: (pair[0].value, -pair[1]))


def _feature_network(study: Study) -> str:
    """The X-ray network GAN quality is measured in: the study's own Original run with the
    lowest validation loss, pinned by version (comparable with the study's GANs by
    construction, unlike `@champion`); "" (no GAN quality) when no Original run finished."""
    best = None
    for used in study.used:
        if used["stage"] != TRAIN_CLASSIFIER:
            continue
        run = tracking.run_info(used["run_id"])
        loss = run.data.metrics.get("best_val_loss")
        version = run.data.tags.get(TAG_MODEL_VERSION)
        if loss is not None and version and (best is None or loss < best[0]):
            best = (loss, version)
    if best is None:
        log.warning("[study] no finished Original run: the GANs are trained without FID/KID")
        return ""
    return f"models:/{CLASSIFIER_MODEL}/{best[1]}"


def run_study(cfg: StudyConfig) -> str:
    """Run or resume the study; return the Markdown table."""
    spec = cfg.spec
    seed_list = parse_seeds(cfg.seeds or spec.seeds)
    names = parse_settings(cfg.settings or spec.settings)
    base = ClassifierConfig(image_size=spec.image_size, epochs=spec.classifier_epochs,
                            batch_size=spec.classifier_batch_size, lr_scaling=spec.lr_scaling,
                            data_dir=cfg.data_dir,
                            max_images_per_split=spec.max_images_per_split,
                            real_subset=cfg.real_subset, experiment_name=cfg.experiment_name,
                            system_metrics=cfg.system_metrics)
    check_layout(resolve_data_dir(cfg.data_dir))  # before the run: a user error
    params = {k: v for k, v in cfg.to_dict().items() if k != "output_dir"}
    resolved = {"seeds_resolved": ",".join(map(str, seed_list)),
                "settings_resolved": ",".join(names)}
    started = describe.study_started(cfg.profile, names, seed_list, cfg.data_dir)
    # SIGTERM (the GPU kit's time budget, a scheduler) between stages too: the study ends KILLED
    with sigterm_as_interrupt(), tracking.start_run(
            cfg.experiment_name, run_name=f"{STUDY}-{cfg.profile}",
            tags=stage_tags(STUDY, profile=cfg.profile), description=started) as parent:
        tracking.log_params(params | resolved)
        study = Study(cfg.experiment_name, parent.info.run_id)
        gan_settings = [n for n in names if parse_setting(n).gan]
        for name in [n for n in names if not parse_setting(n).gan]:
            for seed in seed_list:
                _classifier(study, replace(base, setting=name, seed=seed), {})
        features = _feature_network(study)
        for gan, r in _gans_needed(gan_settings, cfg.real_subset):
            gan_cfg = GANConfig(model=gan.value, image_size=spec.image_size,
                                epochs=spec.gan_epochs, batch_size=spec.gan_batch_size,
                                data_dir=cfg.data_dir, max_images=spec.gan_max_images,
                                sample_every=spec.sample_every, eval_images=spec.eval_images,
                                experiment_name=cfg.experiment_name, lr_scaling=spec.lr_scaling,
                                feature_model_uri=features, real_fraction=r,
                                system_metrics=cfg.system_metrics)
            gan_run = _gan(study, gan_cfg)
            generated = gan_run and _generate(study, gan, gan_run, spec)
            for name in gan_settings:
                setting = parse_setting(name)
                if setting.gan != gan.display or (r < 1 and setting.real_fraction != r) or (
                        r == 1 and cfg.real_subset == "fixed" and setting.real_fraction < 1):
                    continue
                for seed in seed_list:
                    if not generated:
                        study.failed.append(f"{name} seed {seed}: no generated images "
                                            f"({gan.display} failed)")
                        continue
                    run_cfg = replace(base, setting=name, seed=seed, synthetic_run_id=generated)
                    _classifier(study, run_cfg, {GENERATE: generated})
        table = _compare(study, names, seed_list, cfg.output_dir)
        describe.describe_study(study.study_run_id, started, study.used, study.failed, table)
        tracking.log_dict({"used": study.used, "failed": study.failed}, STUDY_RUNS_ARTIFACT)
        tracking.log_metrics({"runs_launched": study.launched, "runs_used": len(study.used),
                              "stages_failed": len(study.failed)})
        log.info("[study] %d stage runs used, %d launched now, %d failed", len(study.used),
                 study.launched, len(study.failed))
        if study.failed:
            log.warning("[study] failed stages:\n  %s", "\n  ".join(study.failed))
        return table


def _compare(study: Study, names: list[str], seeds: list[int], output_dir: str) -> str:
    from pneumonia_aug.stages.compare import run_compare

    classifier_runs = sorted(u["run_id"] for u in study.used if u["stage"] == TRAIN_CLASSIFIER)
    params = {"experiment_name": study.experiment_name, "settings": ",".join(names)}
    cfg = CompareConfig(experiment_name=study.experiment_name, output_dir=output_dir)
    run_id = study.stage(COMPARE, COMPARE, params, {"classifier_runs": classifier_runs},
                         lambda: run_compare(cfg, run_ids=classifier_runs,
                                             expected_settings=names, expected_seeds=seeds,
                                             extra_params=params))
    return tracking.read_text_artifact(run_id, "table1.md") if run_id else ""

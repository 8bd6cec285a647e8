"""The study's stages as a graph (`study_graph`), in the order the walk starts them.

A block holds GANs (each trained with one seed, its generation drawn with that seed), the
Original settings x the block's seeds, the feature network (the block's Original run with the
lowest validation loss, pinned by version: the X-ray network GAN quality is measured with),
each GAN's quality step, generation and GAN settings x seeds. The GANs come first in a block and
wait for nothing: their chain (GAN, generation, GAN rows) is the longest, and their quality is
measured once the feature network is known.

- `per-seed` design: one block per seed, listed seed by seed (seed-major): a seed's GAN,
  Originals, generation and GAN rows start together, the next seed's as slots free up, so a
  study stopped at any time leaves complete pairs;
- `shared` design: one block, its GANs trained with seed 0, for every seed.

Compare comes last, after every classifier run. Each node makes its stage's call once its
upstream results are known (`study.graph`).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from pneumonia_aug import tracking
from pneumonia_aug.config import (
    PER_SEED,
    ClassifierConfig,
    CompareConfig,
    GANConfig,
    GenerateConfig,
    QualityConfig,
    StudyConfig,
)
from pneumonia_aug.contract import (
    CHOSEN_VAL_LOSS,
    CLASSIFIER_MODEL,
    COMPARE,
    GAN_QUALITY,
    GENERATE,
    TAG_MODEL_VERSION,
    TRAIN_CLASSIFIER,
    TRAIN_GAN,
    Gan,
    current_metrics,
    generator_model_name,
)
from pneumonia_aug.settings import Setting
from pneumonia_aug.study.graph import Node, StageCall
from pneumonia_aug.study.ledger import Study

log = logging.getLogger(__name__)
FEATURES = "feature network"  # the driver step between a block's Original runs and its GANs


def _key_params(cfg) -> dict:
    """The params a reusable run must match: all but `system_metrics` (what was watched while
    it ran, not what it computed)."""
    return {k: v for k, v in cfg.to_dict().items() if k != "system_metrics"}


def _classifier_node(study: Study, cfg: ClassifierConfig, generate: str = "",
                     gan: Gan | None = None) -> Node:
    """A classifier run; a GAN setting's needs its generate node's run (`generate`)."""
    label = f"{TRAIN_CLASSIFIER} {cfg.setting} seed {cfg.seed}"

    def make(results: dict) -> StageCall | None:
        if not generate:
            return StageCall(TRAIN_CLASSIFIER, label, _key_params(cfg), {}, cfg)
        generated = results[generate]
        if not generated:
            study.record_failure(f"{cfg.setting} seed {cfg.seed}: no generated images "
                                 f"({gan.display} failed)")
            return None
        run_cfg = replace(cfg, synthetic_run_id=generated)
        return StageCall(TRAIN_CLASSIFIER, label, _key_params(run_cfg), {GENERATE: generated},
                         run_cfg)

    return Node(label, TRAIN_CLASSIFIER, (generate,) if generate else (), make, cfg,
                seed=cfg.seed)


def _gan_node(cfg: GANConfig, suffix: str, seed: int | None) -> Node:
    """A GAN; it waits for nothing (its quality is measured later, `_quality_node`)."""
    label = f"{TRAIN_GAN} {cfg.model}" + (f" r={cfg.real_fraction}" if cfg.real_fraction < 1
                                           else "") + suffix
    return Node(label, TRAIN_GAN, (), lambda results: StageCall(
        TRAIN_GAN, label, _key_params(cfg), {}, cfg), cfg, seed=seed)


def _quality_node(gan_node: Node, features: str, seed: int | None) -> Node:
    """The GAN's quality, measured into its run once the feature network is known (its config,
    for the estimate: the GAN's)."""
    label = gan_node.name.replace(TRAIN_GAN, GAN_QUALITY, 1)

    def make(results: dict) -> StageCall | None:
        gan_run, uri = results[gan_node.name], results[features]
        if not gan_run or not uri:
            return None  # the GAN failed, or no Original run gave a feature network
        cfg = QualityConfig(gan_run_id=gan_run, feature_model_uri=uri)
        return StageCall(GAN_QUALITY, label, cfg.to_dict(), {TRAIN_GAN: gan_run}, cfg)

    return Node(label, GAN_QUALITY, (gan_node.name, features), make, gan_node.config,
                seed=seed)


def _generate_node(gan_node: Node, cfg: GenerateConfig, seed: int | None) -> Node:
    label = gan_node.name.replace(TRAIN_GAN, GENERATE, 1)

    def make(results: dict) -> StageCall | None:
        gan_run = results[gan_node.name]
        if not gan_run:
            return None  # the GAN failed (recorded); its settings say so
        version = tracking.run_tags(gan_run)[TAG_MODEL_VERSION]
        uri = f"models:/{generator_model_name(cfg.gan)}/{version}"  # pinned, not an alias
        run_cfg = replace(cfg, model_uri=uri)
        return StageCall(GENERATE, label, run_cfg.to_dict(), {TRAIN_GAN: gan_run}, run_cfg)

    return Node(label, GENERATE, (gan_node.name,), make, cfg, seed=seed)


def _gans_needed(gan_settings: list[Setting], real_subset: str) -> list[tuple[Gan, float]]:
    """(GAN, the real fraction it learns from) for each GAN the settings need: one per GAN
    learning from all real images (the authors' way), or with `real_subset=fixed` one per GAN
    and r, learning only from the real images the r settings keep."""
    needed = {(Gan.parse(s.gan), s.real_fraction if real_subset == "fixed" else 1.0)
              for s in gan_settings}
    return sorted(needed, key=lambda pair: (pair[0].value, -pair[1]))


def _feature_network(original_runs: list[str | None]) -> str:
    """The X-ray network GAN quality is measured in: the block's own Original run with the
    lowest validation loss, pinned by version (comparable with the block's GANs by
    construction, unlike `@champion`); "" (no GAN quality) when no Original run finished."""
    best = None
    for run_id in filter(None, original_runs):
        run = tracking.run_info(run_id)
        loss = current_metrics(run.data.metrics).get(CHOSEN_VAL_LOSS)
        version = run.data.tags.get(TAG_MODEL_VERSION)
        if loss is not None and version and (best is None or loss < best[0]):
            best = (loss, version)
    if best is None:
        log.warning("[study] no finished Original run: no GAN quality for its GANs")
        return ""
    return f"models:/{CLASSIFIER_MODEL}/{best[1]}"


def _of_gan(setting: Setting, gan: Gan, r: float, real_subset: str) -> bool:
    """Whether the GAN setting draws from this GAN (learning from fraction r)."""
    return setting.gan == gan.display and not (r < 1 and setting.real_fraction != r) and not (
        r == 1 and real_subset == "fixed" and setting.real_fraction < 1)


def _block(cfg: StudyConfig, study: Study, base: ClassifierConfig, gan_seed: int,
           seeds: list[int], suffix: str) -> list[Node]:
    """GANs trained (and drawn) with `gan_seed`, and the settings' runs for `seeds`."""
    spec, settings = cfg.spec, cfg.setting_list
    seed = seeds[0] if len(seeds) == 1 else None  # a block of one seed is that seed's pair
    gan_settings = [s for s in settings if s.gan]
    gans = [_gan_node(GANConfig(
        model=gan.value, image_size=spec.image_size, epochs=spec.gan_epochs,
        batch_size=spec.gan_batch_size, data_dir=cfg.data_dir, max_images=spec.gan_max_images,
        sample_every=spec.sample_every, eval_images=spec.eval_images,
        experiment_name=cfg.experiment_name, lr_scaling=spec.lr_scaling, feature_model_uri="",
        real_fraction=r, seed=gan_seed, system_metrics=cfg.system_metrics), suffix, seed)
        for gan, r in _gans_needed(gan_settings, cfg.real_subset)]
    originals = [_classifier_node(study, replace(base, setting=s.name, seed=s_))
                 for s in settings if not s.gan for s_ in seeds]
    names = tuple(node.name for node in originals)
    features = Node(FEATURES + suffix, FEATURES, names, in_driver=True, seed=seed,
                    make=lambda results: _feature_network([results[n] for n in names]))
    nodes = [*gans, *originals, features]
    for gan_node in gans:
        gan = gan_node.config.gan
        generate = _generate_node(gan_node, GenerateConfig(
            model=gan.value, n_images=spec.n_images, seed=gan_seed,
            experiment_name=cfg.experiment_name), seed)
        nodes += [_quality_node(gan_node, features.name, seed), generate]
        nodes += [_classifier_node(study, replace(base, setting=s.name, seed=s_), generate.name,
                                   gan)
                  for s in gan_settings if _of_gan(s, gan, gan_node.config.real_fraction,
                                                   cfg.real_subset)
                  for s_ in seeds]
    return nodes


def study_graph(cfg: StudyConfig, study: Study) -> list[Node]:
    """Every stage of the study, each after what it needs, listed in the order one at a time
    runs them (module docstring)."""
    spec = cfg.spec
    base = ClassifierConfig(image_size=spec.image_size, epochs=spec.classifier_epochs,
                            batch_size=spec.classifier_batch_size, lr_scaling=spec.lr_scaling,
                            data_dir=cfg.data_dir,
                            max_images_per_split=spec.max_images_per_split,
                            real_subset=cfg.real_subset, experiment_name=cfg.experiment_name,
                            system_metrics=cfg.system_metrics, gan_seeds=cfg.design)
    if cfg.design == PER_SEED:
        nodes = [node for seed in cfg.seed_list
                 for node in _block(cfg, study, base, seed, [seed], f" seed {seed}")]
    else:
        nodes = _block(cfg, study, base, 0, cfg.seed_list, "")
    classifiers = tuple(node.name for node in nodes if node.kind == TRAIN_CLASSIFIER)
    nodes.append(_compare_node(study, cfg, classifiers))
    return nodes


def _compare_node(study: Study, cfg: StudyConfig, classifiers: tuple[str, ...]) -> Node:
    names = [s.name for s in cfg.setting_list]
    params = {"experiment_name": study.experiment_name, "settings": ",".join(names)}
    compare = CompareConfig(experiment_name=study.experiment_name, output_dir=cfg.output_dir,
                            planned_seeds=cfg.planned_seeds)

    def make(results: dict) -> StageCall | None:
        runs = sorted(filter(None, (results[name] for name in classifiers)))
        if not runs:  # every seed left out by the time budget, or every classifier failed
            log.warning("[study] compare not run: no classifier run to compare")
            return None

        def run_here(run_id: str) -> str:
            # Imported here, when compare runs: a study that reuses its compare, or has nothing
            # to compare, does without the statistics and plotting libraries.
            from pneumonia_aug.stages.compare import run_compare

            return run_compare(compare, run_ids=runs, expected_settings=names,
                               expected_seeds=cfg.seed_list, extra_params=params,
                               run_id=run_id, gan_seeds=cfg.design)

        return StageCall(COMPARE, COMPARE, params, {"classifier_runs": runs},
                         run_here=run_here)

    return Node(COMPARE, COMPARE, classifiers, make, compare, in_driver=True)

"""The study's stages as a graph (`study_graph`): the Original settings x seeds; the feature
network (the Original run with the lowest validation loss, pinned by version: the X-ray
network GAN quality is measured with); each GAN needed, its generation, its GAN settings x
seeds; compare, after every classifier run. Each node makes its stage's call once its upstream
results are known (`study.graph`)."""

from __future__ import annotations

import logging
from dataclasses import replace

from pneumonia_aug import tracking
from pneumonia_aug.config import (
    ClassifierConfig,
    CompareConfig,
    GANConfig,
    GenerateConfig,
    StudyConfig,
)
from pneumonia_aug.contract import (
    CHOSEN_VAL_LOSS,
    CLASSIFIER_MODEL,
    COMPARE,
    GENERATE,
    TAG_MODEL_VERSION,
    TRAIN_CLASSIFIER,
    TRAIN_GAN,
    Gan,
    current_metrics,
    generator_model_name,
)
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.settings import PAPER_TABLE1, parse_setting
from pneumonia_aug.study.graph import Node, StageCall
from pneumonia_aug.study.ledger import Study

log = logging.getLogger(__name__)
FEATURES = "feature network"  # the driver step between the Original runs and the GANs


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

    return Node(label, TRAIN_CLASSIFIER, (generate,) if generate else (), make, cfg)


def _gan_node(cfg: GANConfig) -> Node:
    """A GAN, measured in the feature network's space (known once the Originals ran)."""
    label = f"{TRAIN_GAN} {cfg.model}" + (f" r={cfg.real_fraction}" if cfg.real_fraction < 1
                                           else "")

    def make(results: dict) -> StageCall:
        run_cfg = replace(cfg, feature_model_uri=results[FEATURES])
        return StageCall(TRAIN_GAN, label, _key_params(run_cfg), {}, run_cfg)

    return Node(label, TRAIN_GAN, (FEATURES,), make, cfg)


def _generate_node(gan: Gan, gan_node: str, cfg: GenerateConfig) -> Node:
    label = f"{GENERATE} {gan.value}" + gan_node.removeprefix(f"{TRAIN_GAN} {gan.value}")

    def make(results: dict) -> StageCall | None:
        gan_run = results[gan_node]
        if not gan_run:
            return None  # the GAN failed (recorded); its settings say so
        version = tracking.run_tags(gan_run)[TAG_MODEL_VERSION]
        uri = f"models:/{generator_model_name(gan)}/{version}"  # pinned, not an alias
        run_cfg = replace(cfg, model_uri=uri)
        return StageCall(GENERATE, label, run_cfg.to_dict(), {TRAIN_GAN: gan_run}, run_cfg)

    return Node(label, GENERATE, (gan_node,), make, cfg)


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


def _feature_network(original_runs: list[str | None]) -> str:
    """The X-ray network GAN quality is measured in: the study's own Original run with the
    lowest validation loss, pinned by version (comparable with the study's GANs by
    construction, unlike `@champion`); "" (no GAN quality) when no Original run finished."""
    best = None
    for run_id in filter(None, original_runs):
        run = tracking.run_info(run_id)
        loss = current_metrics(run.data.metrics).get(CHOSEN_VAL_LOSS)
        version = run.data.tags.get(TAG_MODEL_VERSION)
        if loss is not None and version and (best is None or loss < best[0]):
            best = (loss, version)
    if best is None:
        log.warning("[study] no finished Original run: the GANs are trained without FID/KID")
        return ""
    return f"models:/{CLASSIFIER_MODEL}/{best[1]}"


def _of_gan(name: str, gan: Gan, r: float, real_subset: str) -> bool:
    """Whether the GAN setting `name` draws from this GAN (learning from fraction r)."""
    setting = parse_setting(name)
    return setting.gan == gan.display and not (r < 1 and setting.real_fraction != r) and not (
        r == 1 and real_subset == "fixed" and setting.real_fraction < 1)


def study_graph(cfg: StudyConfig, study: Study, names: list[str], seeds: list[int]) -> list[Node]:
    """Every stage of the study, each after what it needs, listed in the order one at a time
    runs them: the Originals, the feature network, per GAN its run, generation and settings,
    compare."""
    spec = cfg.spec
    base = ClassifierConfig(image_size=spec.image_size, epochs=spec.classifier_epochs,
                            batch_size=spec.classifier_batch_size, lr_scaling=spec.lr_scaling,
                            data_dir=cfg.data_dir,
                            max_images_per_split=spec.max_images_per_split,
                            real_subset=cfg.real_subset, experiment_name=cfg.experiment_name,
                            system_metrics=cfg.system_metrics)
    nodes = [_classifier_node(study, replace(base, setting=name, seed=seed))
             for name in names if not parse_setting(name).gan for seed in seeds]
    originals = tuple(node.name for node in nodes)
    nodes.append(Node(FEATURES, FEATURES, originals, in_driver=True, make=lambda results:
                      _feature_network([results[name] for name in originals])))
    gan_settings = [n for n in names if parse_setting(n).gan]
    for gan, r in _gans_needed(gan_settings, cfg.real_subset):
        gan_node = _gan_node(GANConfig(
            model=gan.value, image_size=spec.image_size, epochs=spec.gan_epochs,
            batch_size=spec.gan_batch_size, data_dir=cfg.data_dir,
            max_images=spec.gan_max_images, sample_every=spec.sample_every,
            eval_images=spec.eval_images, experiment_name=cfg.experiment_name,
            lr_scaling=spec.lr_scaling, feature_model_uri="", real_fraction=r,
            system_metrics=cfg.system_metrics))
        generate = _generate_node(gan, gan_node.name, GenerateConfig(
            model=gan.value, n_images=spec.n_images, seed=0,
            experiment_name=cfg.experiment_name))
        nodes += [gan_node, generate]
        nodes += [_classifier_node(study, replace(base, setting=name, seed=seed),
                                   generate.name, gan)
                  for name in gan_settings if _of_gan(name, gan, r, cfg.real_subset)
                  for seed in seeds]
    classifiers = tuple(node.name for node in nodes if node.kind == TRAIN_CLASSIFIER)
    nodes.append(_compare_node(study, names, seeds, cfg.output_dir, classifiers))
    return nodes


def _compare_node(study: Study, names: list[str], seeds: list[int], output_dir: str,
                  classifiers: tuple[str, ...]) -> Node:
    from pneumonia_aug.stages.compare import run_compare

    params = {"experiment_name": study.experiment_name, "settings": ",".join(names)}
    cfg = CompareConfig(experiment_name=study.experiment_name, output_dir=output_dir)

    def make(results: dict) -> StageCall:
        runs = sorted(filter(None, (results[name] for name in classifiers)))
        return StageCall(COMPARE, COMPARE, params, {"classifier_runs": runs},
                         run_here=lambda run_id: run_compare(
                             cfg, run_ids=runs, expected_settings=names, expected_seeds=seeds,
                             extra_params=params, run_id=run_id))

    return Node(COMPARE, COMPARE, classifiers, make, cfg, in_driver=True)

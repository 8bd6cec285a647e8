"""What the MLflow UI says about a run, a model version and a study, in words and links.

Each stage run's description (Markdown) says what it is and where its inputs came from, with
links to the upstream runs, and, once its data are loaded, how many images it trained on; a
registered version's says what it was trained on and its results, each at its threshold; the
study's leads with Table 1 in short and the forest plot (`stages.table_page`) and lists, with
links, every run it used, launched now or reused. A reused run is moved under the study that
used it last (its `launched_by_study` tag keeps the study that launched it), so the UI's run
list shows each study with all of its runs.

Every number said here is one the run logged (a metric, a count tag, a param) or counted in
its data: nothing comes from a default.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pandas as pd

from pneumonia_aug import tracking
from pneumonia_aug.config import ClassifierConfig, GANConfig, GenerateConfig
from pneumonia_aug.contract import (
    CHOSEN_TEMPERATURE,
    CHOSEN_THRESHOLD,
    COMPARE,
    ERROR_COLUMN,
    FOREST_PLOT,
    IMAGE_COLUMN,
    LABEL_COLUMN,
    N_TEST,
    N_TRAIN,
    N_TRAIN_GENERATED,
    N_TRAIN_REAL_NORMAL,
    N_VAL,
    OLDER_TAG_STUDY_RUN,
    PROBABILITY_COLUMN,
    STUDY_RUNS_ARTIFACT,
    TABLE_CSV,
    TABLE_OUTPUTS,
    TAG_LAUNCHED_BY_STUDY,
    TAG_TRAIN_GAN_RUN,
    TEST,
    TEST_OP,
    TEST_OP_RECALL,
    THRESHOLD,
    THRESHOLD_COLUMN,
    metric,
)
from pneumonia_aug.data.kermany import default_data_dir
from pneumonia_aug.errors import TrackingError
from pneumonia_aug.settings import Setting
from pneumonia_aug.stages import table_page

log = logging.getLogger(__name__)


def run_link(run_id: str, text: str = "") -> str:
    """`[name](address)` of a run in the UI (its name unless `text` is given)."""
    try:
        run = tracking.run_info(run_id)
    except TrackingError:  # deleted since, or in another store: the id still says which
        return f"`{run_id}`"
    label = text or run.info.run_name or run_id
    return f"[{label}]({tracking.run_page(run.info.experiment_id, run_id)})"


def _data(data_dir: str) -> str:
    return f"`{default_data_dir(data_dir).resolve()}`"


def _setting_words(setting: Setting) -> str:
    real = ("all real images" if setting.real_fraction == 1
            else f"{setting.real_fraction:.0%} of the real NORMAL images")
    if not setting.gan:
        return real
    return f"{real} + {setting.synthetic_fraction:.0%} of the generated ones"


def _size(cfg) -> str:
    epochs = f"{cfg.epochs} epoch{'' if cfg.epochs == 1 else 's'}"
    return f"{cfg.image_size} px, {epochs}, batch {cfg.batch_size}"


def _cap(n: int, of: str = "images per split") -> str:
    return f"; debug subset: at most {n} {of}" if n else ""


def classifier_run(cfg: ClassifierConfig, setting: Setting, synthetic_run_id: str,
                   counts: dict | None = None, n_generated: int = 0) -> str:
    """E.g. "CheXNet on DCGAN-1.0-0.6 ..., seed 0, 32 px ...; generated images from generate
    run X (GAN run Y)", and once the data are loaded (`counts`: the run's image count tags;
    `n_generated`: the images its generate run drew) what it trained on."""
    text = (f"**CheXNet** (DenseNet121) on **{setting.name}** ({_setting_words(setting)}), "
            f"seed {cfg.seed}, {_size(cfg)}. Real images from {_data(cfg.data_dir)} "
            f"(validation split seed {cfg.split_seed}){_cap(cfg.max_images_per_split)}.")
    if synthetic_run_id:
        gan_run = tracking.run_tags(synthetic_run_id).get(TAG_TRAIN_GAN_RUN, "")
        text += f" Generated images from generate run {run_link(synthetic_run_id)}"
        text += f" (GAN run {run_link(gan_run)})." if gan_run else "."
    if counts:
        generated = (f", {counts[N_TRAIN_GENERATED]} generated of the {n_generated} its "
                     "generate run drew" if synthetic_run_id else "")
        text += (f" Trained on {counts[N_TRAIN]} images ({counts[N_TRAIN_REAL_NORMAL]} real "
                 f"NORMAL{generated}, the rest PNEUMONIA), validated on {counts[N_VAL]}, tested "
                 f"on {counts[N_TEST]}.")
    return text


def _test_metrics(metrics: dict) -> str:
    """The kept weights on test at 0.5, as Table 1 reads them (`metrics`: the run's `test/*`)."""
    m = {k.removeprefix(f"{TEST}/"): v for k, v in metrics.items()}
    return (f"at threshold {THRESHOLD} (Table 1): test accuracy {m['accuracy']:.3f}, recall "
            f"{m['recall']:.3f}, specificity {m['specificity']:.3f}, AUROC {m['auroc']:.3f}")


def _served_metrics(metrics: dict) -> str:
    """What the registered model answers on test, at its threshold (`metrics`: `model/*` and
    `test_op/*`)."""
    return (f"as served (calibrated, threshold {metrics[CHOSEN_THRESHOLD]:.3f}): test accuracy "
            f"{metrics[metric(TEST_OP, 'accuracy')]:.3f}, recall "
            f"{metrics[TEST_OP_RECALL]:.3f}, specificity "
            f"{metrics[metric(TEST_OP, 'specificity')]:.3f}")


def classifier_result(metrics: dict, best_epoch: int, model: str, version: str) -> str:
    """`metrics`: the run's `test/*` metrics."""
    return (f"**Result** (weights of epoch {best_epoch}, lowest validation loss) "
            f"{_test_metrics(metrics)}. Registered as "
            f"[{model} v{version}]({tracking.model_version_page(model, version)}).")


def operating_point(metrics: dict, rule: str) -> str:
    """What the registered model applies, from the run's `model/*`, `test_op/*` and
    `test/ece*` metrics."""
    m = metrics
    return (f"**Served:** probability calibrated with temperature "
            f"{m[CHOSEN_TEMPERATURE]:.2f}, label at threshold {m[CHOSEN_THRESHOLD]:.3f} "
            f"({rule}, chosen on validation): test recall {m[TEST_OP_RECALL]:.3f}, "
            f"specificity {m[metric(TEST_OP, 'specificity')]:.3f}; ECE "
            f"{m[metric(TEST, 'ece')]:.3f} -> {m[metric(TEST, 'ece_calibrated')]:.3f}.")


def version_of_run(what: str, image_size: int, cap: str, digest: str, run_id: str,
                   load: str, result: str = "") -> str:
    """A registered version's description: what it was trained on, its size, its debug cap
    (`cap`, "" for none), data, run, its `result` if any, then how to load it (`load`: Python
    lines)."""
    result = f" **Result:** {result}." if result else ""
    return (f"{what}, {image_size} px{cap}. Data digest `{digest}`. Trained in run "
            f"{run_link(run_id)} (`{run_id}`).{result}\n\n**Load** (with `MLFLOW_TRACKING_URI` "
            f"naming this store):\n\n```python\n{load}\n```")


def classifier_version(cfg: ClassifierConfig, digest: str, run_id: str, metrics: dict,
                       model: str, version: str) -> str:
    """What the version was trained on, its test metrics at 0.5 and as served (`metrics`: the
    run's `test/*`, `test_op/*` and `model/*`), and how to load it from Python or run
    `pneumonia-aug predict` with it."""
    uri = f"models:/{model}/{version}"
    answers = ", ".join((PROBABILITY_COLUMN, LABEL_COLUMN, THRESHOLD_COLUMN, ERROR_COLUMN))
    load = ("import base64\nfrom pathlib import Path\n\nimport mlflow\nimport pandas as pd\n\n"
            f'model = mlflow.pyfunc.load_model("{uri}")\n'
            'image = base64.b64encode(Path("x.jpeg").read_bytes()).decode()\n'
            f'print(model.predict(pd.DataFrame({{"{IMAGE_COLUMN}": [image]}})))  # {answers}')
    return version_of_run(f"CheXNet on {cfg.setting}, seed {cfg.seed}", cfg.image_size,
                          _cap(cfg.max_images_per_split), digest, run_id, load,
                          f"{_test_metrics(metrics)}; {_served_metrics(metrics)}") + (
        f"\n\nOr `pneumonia-aug predict --model {uri} x.jpeg`: label, probability and a "
        "Grad-CAM figure per image.")


def generator_version(cfg: GANConfig, digest: str, run_id: str, model: str,
                      version: str) -> str:
    load = (f'import mlflow\n\ngenerator = mlflow.pyfunc.load_model("models:/{model}/{version}")\n'
            "images = generator.unwrap_python_model().generate(16, 0)  # 16 uint8 arrays, seed 0")
    return version_of_run(f"{cfg.gan.display} generator, seed {cfg.seed}", cfg.image_size,
                          _cap(cfg.max_images, "training images"), digest, run_id, load)


def gan_run(cfg: GANConfig, n_trained: int = 0, n_available: int = 0) -> str:
    """What the GAN learns from; once its data are loaded (`n_trained` of `n_available`
    images), how many."""
    gan = cfg.gan.display
    kind = ("real NORMAL training images" if gan == "DCGAN"
            else "real training images of both classes, with their labels")
    if n_available:  # what it trained on: `n_trained` (a debug cap applied), the count tag
        images = (f"{n_trained} of the {n_available} {kind}" if n_trained < n_available
                  else f"all {n_available} {kind}")
    else:
        images = f"the {kind}"
    if cfg.real_fraction < 1:
        images += f" that an r = {cfg.real_fraction:g} setting keeps (real_subset=fixed)"
    quality = (f" GAN quality (FID/KID, memorization) in the features of "
               f"`{cfg.feature_model_uri}`." if cfg.feature_model_uri else "")
    return (f"**{gan}** trained on {images} of {_data(cfg.data_dir)} (after the validation "
            f"split, seed {cfg.split_seed}), seed {cfg.seed}, {_size(cfg)}"
            f"{_cap(cfg.max_images, 'training images')}.{quality}")


def generate_run(cfg: GenerateConfig, uri: str, version: str, gan_run_id: str,
                 n_drawn: int) -> str:
    """`n_drawn`: the images the run wrote (its `generated` input's rows)."""
    source = f" (GAN run {run_link(gan_run_id)})" if gan_run_id else ""
    return (f"**{n_drawn} NORMAL images** drawn with seed {cfg.seed} from `{uri}` "
            f"(version {version}){source}; the GAN settings' classifier runs add them.")


def compare_run(n_runs: int, study_run_id: str, key: str) -> str:
    """What a compare run tabulated (the head of its page's first line)."""
    origin = f"of study {run_link(study_run_id)}" if study_run_id else "of the experiment"
    return f"**Table 1** from {n_runs} classifier runs {origin} (comparison group `{key}`)"


def study_started(profile: str, settings: list[str], seeds: list[int], data_dir: str,
                  gan_seeds: str) -> str:
    design = ("one GAN and one generated set per seed" if gan_seeds == "per-seed"
              else "one GAN and one generated set shared by every seed")
    return (f"**Study**, profile `{profile}`: settings {', '.join(settings)}; seeds "
            f"{', '.join(map(str, seeds))} ({design}: gan_seeds={gan_seeds}); data "
            f"{_data(data_dir)}.")


def launcher(tags: dict) -> str:
    """The study that launched a run: its `launched_by_study` once a later study reused it (an
    older run's `study_run_id`), else its parent; "" for a run of no study."""
    return (tags.get(TAG_LAUNCHED_BY_STUDY) or tags.get(OLDER_TAG_STUDY_RUN)
            or tags.get(tracking.PARENT_TAG, ""))


def _adopt(study_run_id: str, run_id: str) -> str:
    """Nest a run under the study (a reused run moves, and keeps its launcher in
    `launched_by_study`); return how the run came to the study."""
    tags = tracking.run_tags(run_id)
    parent = tags.get(tracking.PARENT_TAG, "")
    launcher_id = launcher(tags) or study_run_id
    if parent != study_run_id:
        if launcher_id != study_run_id and TAG_LAUNCHED_BY_STUDY not in tags:
            tracking.tag_run(run_id, {TAG_LAUNCHED_BY_STUDY: launcher_id})
        tracking.set_parent(run_id, study_run_id)
    return ("new" if launcher_id == study_run_id
            else f"reused, launched by study {run_link(launcher_id)}")


def _head(study_run_id: str, started: str, used: list[dict], table: str) -> str:
    """The study's page above its runs: Table 1 as the page leads with it, compare's files
    copied to the study's run, linked and shown, and what the study ran (`started`) right
    under the first line (`table`: the Markdown, whose first line is the scale)."""
    compare = next((u["run_id"] for u in used if u["stage"] == COMPARE), "")
    if not (compare and table.strip()):
        return f"{started}\n\n{table.strip() or '(no table: no classifier run finished)'}"
    with tempfile.TemporaryDirectory() as tmp:
        copies = tracking.copy_artifacts(compare, study_run_id, (*TABLE_OUTPUTS, FOREST_PLOT),
                                         Path(tmp))
        frame = pd.read_csv(copies[TABLE_CSV])
    experiment = tracking.run_info(study_run_id).info.experiment_id
    return table_page.lead(frame, table.strip().splitlines()[0], experiment, study_run_id,
                           other=run_link(compare, "compare run"), then=started)


def describe_study(study_run_id: str, started: str, used: list[dict], failed: list[str],
                   table: str) -> None:
    """Nest every run the study used under it and set its description: what it ran, Table 1
    in short with the forest plot (`table_page`), and a link to each run, new or reused."""
    lines = [f"- {run_link(u['run_id'], u['label'])}: {_adopt(study_run_id, u['run_id'])}"
             for u in used]
    lines += [f"- **failed:** {f}" for f in failed]
    head = _head(study_run_id, started, used, table)
    runs = f"\n\n### Runs ({len(used)} used, {len(failed)} failed)\n"
    room = tracking.TAG_VALUE_LIMIT - len(head) - len(runs) - 80
    kept = []
    for line in lines:
        if len(line) + 1 > room:
            kept.append(f"- ... and {len(lines) - len(kept)} more (see {STUDY_RUNS_ARTIFACT})")
            break
        kept.append(line)
        room -= len(line) + 1
    tracking.describe_run(study_run_id, head + runs + "\n".join(kept))

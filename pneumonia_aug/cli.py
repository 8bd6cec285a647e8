"""`pneumonia-aug`: the command line; each MLproject entry point calls one command here.

The options of the run commands are built from the config dataclasses (`pneumonia_aug.config`:
default, help and choices written once). Options accept both `--split-seed` and `--split_seed`
(the second hidden from help), because `mlflow run` passes undeclared `-P key=value` pairs as
`--key value`. Nothing heavy (torch, MLflow) is imported until a command runs.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import sys
from pathlib import Path

import click

from pneumonia_aug import logs
from pneumonia_aug.cli_types import UserErrorGroup, WholeNumber
from pneumonia_aug.config import (
    DATA_DIR_HELP,
    ClassifierConfig,
    CompareConfig,
    GANConfig,
    GenerateConfig,
    Reliability,
    StudyConfig,
)
from pneumonia_aug.contract import DEFAULT_CLASSIFIER_URI
from pneumonia_aug.errors import PneumoniaAugError

log = logging.getLogger("pneumonia_aug")


def option(name: str, **kwargs):
    """`--split-seed`, plus the hidden alias `--split_seed` (what `mlflow run` passes for an
    undeclared `-P split_seed=...`); `fold_aliases` merges the two."""

    def decorate(func):
        func = click.option("--" + name.replace("_", "-"), name, **kwargs)(func)
        if "_" in name:
            same = {k: kwargs[k] for k in ("type", "is_flag", "flag_value") if k in kwargs}
            func = click.option(f"--{name}", f"{name}{_ALIAS}", default=None, hidden=True,
                                **same)(func)
        return func

    return decorate


_ALIAS = "__alias"


def fold_aliases(func):
    """Call `func` with each hidden underscore alias's value moved to its option's name."""

    @functools.wraps(func)
    def wrapper(**params):
        values = {k: v for k, v in params.items() if not k.endswith(_ALIAS)}
        for key, value in params.items():
            if key.endswith(_ALIAS) and value is not None:
                values[key.removesuffix(_ALIAS)] = value
        return func(**values)

    return wrapper


def config_options(config_cls):
    """Decorator adding one option per dataclass field: its default, help text and choices.
    A bool field is a flag that also takes a value (`--system-metrics`, `--system-metrics
    false`), since `mlflow run -P system_metrics=true` passes `--system_metrics true`."""
    types = {"int": WholeNumber(), "float": float, "str": str, "bool": click.BOOL}

    def decorate(func):
        for f in reversed(dataclasses.fields(config_cls)):
            choices = f.metadata.get("choices")
            kind = click.Choice(choices, case_sensitive=False) if choices else types[str(f.type)]
            flag = ({"is_flag": False, "flag_value": True, "metavar": "[BOOLEAN]"}
                    if str(f.type) == "bool" else {})
            func = option(f.name, type=kind, default=f.default, show_default=True,
                          help=f.metadata.get("help", ""), **flag)(func)
        return func

    return decorate


@click.group(cls=UserErrorGroup)
@click.version_option(package_name="pneumonia-aug")
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
def main(verbose: bool) -> None:
    """GAN data augmentation for pneumonia diagnosis (Tung et al.), tracked in MLflow.

    MLflow's artifact download bars are off (MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=true shows
    them); training shows a progress bar per epoch on a terminal (PNEUMONIA_AUG_PROGRESS=0
    hides it)."""
    logs.setup(verbose)
    # MLflow's client retries a failing server for minutes by default; a few tries are enough
    # for a blip, and a dead server is caught up front by `ensure_reachable` below.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    # MLflow draws a progress bar for every artifact download (a model, generated images), on
    # a terminal or not; MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=true brings them back.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def tracked(config_cls):
    """A command that logs to MLflow: build (and so validate) its config from the options,
    then check the tracking server (fails in seconds), then call the command with the config."""

    def decorate(func):
        @config_options(config_cls)
        @functools.wraps(func)
        @fold_aliases
        def wrapper(**params):
            extra = {k: params.pop(k) for k in list(params) if k in _EXTRA_OPTIONS}
            cfg = config_cls(**params)
            Reliability.from_env()  # a bad PNEUMONIA_AUG_*_S limit: refused before any run
            from pneumonia_aug import tracking

            tracking.ensure_reachable(cfg.experiment_name)
            return func(cfg, **extra)

        return wrapper

    return decorate


_EXTRA_OPTIONS = ("resume", "dry_run", "plan_gpus")
RESUME_HELP = ("continue this killed or failed run from its last checkpoint, into the same "
               "run; give the run's options again")
resume_option = click.option("--resume", default="", metavar="RUN_ID", help=RESUME_HELP)


@main.command("train-classifier")
@resume_option
@tracked(ClassifierConfig)
def train_classifier_cmd(cfg: ClassifierConfig, resume: str) -> None:
    """Train CheXNet on one setting and log it to MLflow (torchrun: data-parallel)."""
    from pneumonia_aug.stages.train_classifier import run_train_classifier

    click.echo(run_train_classifier(cfg, resume_run_id=resume))


@main.command("train-gan")
@resume_option
@tracked(GANConfig)
def train_gan_cmd(cfg: GANConfig, resume: str) -> None:
    """Train a DCGAN or CGAN on the real training images and register its generator
    (torchrun: data-parallel)."""
    from pneumonia_aug.stages.train_gan import run_train_gan

    click.echo(run_train_gan(cfg, resume_run_id=resume))


@main.command("generate")
@tracked(GenerateConfig)
def generate_cmd(cfg: GenerateConfig) -> None:
    """Draw NORMAL images from a registered generator and log them as a run."""
    from pneumonia_aug.stages.generate import run_generate

    click.echo(run_generate(cfg))


@main.command("compare")
@tracked(CompareConfig)
def compare_cmd(cfg: CompareConfig) -> None:
    """Build Table 1 (ours beside the paper's) from the classifier runs."""
    from pneumonia_aug.stages.compare import run_compare

    run_compare(cfg)
    click.echo((Path(cfg.output_dir) / "table1.md").read_text())


@main.command("study")
@click.option("--dry-run", is_flag=True, help="print the stages it would run or reuse and "
              "their estimated times (from docs/benchmarks.md); launch nothing")
@click.option("--plan-gpus", type=click.IntRange(min=0), default=None, help="with --dry-run: "
              "estimate for this many GPUs (0 = the CPU; default: this machine's)")
@tracked(StudyConfig)
def study_cmd(cfg: StudyConfig, dry_run: bool, plan_gpus: int | None) -> None:
    """Run (or resume) the whole study and print Table 1."""
    if dry_run:
        from pneumonia_aug.study.plan import plan_study

        click.echo(plan_study(cfg, plan_gpus))
        return
    from pneumonia_aug.study.study import run_study

    click.echo(run_study(cfg))


@main.command("predict")
@click.option("--model", "model_uri", default=DEFAULT_CLASSIFIER_URI, show_default=True,
              help="a registered classifier (models:/NAME@ALIAS or /VERSION)")
@option("output_dir", default="outputs/predict", show_default=True,
        help="where the Grad-CAM overlays go")
@option("images_file", default="", metavar="FILE",
        help="a text file naming one image per line (names with spaces or commas welcome)")
@option("image_list", default="", metavar="LIST",
        help="images separated by commas or new lines (what `mlflow run -e predict -P "
             "images=...` passes)")
@click.argument("images", nargs=-1)
@fold_aliases
def predict_cmd(model_uri: str, output_dir: str, images_file: str, image_list: str,
                images: tuple[str, ...]) -> None:
    """Print, under a header line, each IMAGE's pneumonia probability (calibrated by the
    version's temperature), label and the threshold it was called at (the version's, chosen
    on validation), tab-separated; write Grad-CAM overlays on the original images. Exits 1
    when any image could not be read.

    MLflow's download progress bars are off; MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=true shows
    them."""
    from pneumonia_aug import tracking
    from pneumonia_aug.stages.predict import HEADER, predict_images

    paths = [*images, *split_image_list(image_list), *read_images_file(images_file)]
    tracking.ensure_reachable()
    results = predict_images(model_uri, paths, output_dir)
    click.echo("\t".join(HEADER))
    for r in results:
        click.echo(r.row())
    if any(r.error for r in results):
        sys.exit(1)


def split_image_list(text: str) -> list[str]:
    """`a.jpeg,b c.png` or one per line -> the names (spaces inside a name are kept)."""
    return [name.strip() for name in text.replace("\n", ",").split(",") if name.strip()]


def read_images_file(path: str) -> list[str]:
    if not path:
        return []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise PneumoniaAugError(f"cannot read --images-file {path}: {exc}") from exc
    return [line.strip() for line in lines if line.strip()]


@main.group()
def data() -> None:
    """Get and check the Kermany chest X-ray data."""


@data.command("download")
@option("data_dir", default="", help=f"target folder ({DATA_DIR_HELP})")
@click.option("--url", default=None, help="archive address (default: Mendeley Data)")
@click.option("--sha256", default=None, help="expected sha256 of the archive")
@click.option("--force", is_flag=True, help="download even if the folder is valid")
@fold_aliases
def data_download(data_dir: str, url: str | None, sha256: str | None, force: bool) -> None:
    """Fetch ChestXRay2017.zip (resumable), verify, unpack and validate it."""
    from pneumonia_aug.data import download
    from pneumonia_aug.data.kermany import default_data_dir

    root = download.download_dataset(data_dir or default_data_dir(),
                                     url=url or download.MENDELEY_URL, sha256=sha256, force=force)
    click.echo(str(root))


@data.command("check")
@option("data_dir", default="", help=DATA_DIR_HELP)
@fold_aliases
def data_check(data_dir: str) -> None:
    """Validate a Kermany folder and print its image counts."""
    from pneumonia_aug.data.dataset import warn_skipped
    from pneumonia_aug.data.kermany import dataset_digest, index_kermany, resolve_data_dir

    root = resolve_data_dir(data_dir)
    index, skipped = index_kermany(root)
    warn_skipped(skipped)
    counts = index.groupby(["split", "label"]).size().unstack(fill_value=0)
    click.echo(f"{root} (digest {dataset_digest(index)})\n{counts.to_string()}")


def _attach_groups() -> None:
    from pneumonia_aug.bench import bench
    from pneumonia_aug.kit.cli import kit
    from pneumonia_aug.services.cli import services

    main.add_command(services)
    main.add_command(bench)
    main.add_command(kit)


_attach_groups()

if __name__ == "__main__":
    main()

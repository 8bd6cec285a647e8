"""The main group, `pneumonia-aug`, and its run commands (train-classifier, train-gan,
gan-quality, generate, compare, study, predict); the other groups are attached from their
modules.

The options of the run commands are built from the config dataclasses (`options.py`).
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from pathlib import Path

import click

from pneumonia_aug import logs
from pneumonia_aug.cli.bench import bench
from pneumonia_aug.cli.data import data
from pneumonia_aug.cli.kit import kit
from pneumonia_aug.cli.options import fold_aliases, option, tracked
from pneumonia_aug.cli.services import services
from pneumonia_aug.cli.types import UserErrorGroup
from pneumonia_aug.config import (
    ClassifierConfig,
    CompareConfig,
    GANConfig,
    GenerateConfig,
    QualityConfig,
    StudyConfig,
)
from pneumonia_aug.contract import DEFAULT_CLASSIFIER_URI
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.startup import paused_collector


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


RESUME_HELP = ("continue this killed or failed run from its last checkpoint, into the same "
               "run; give the run's options again")
resume_option = click.option("--resume", default="", metavar="RUN_ID", help=RESUME_HELP)


@main.command("train-classifier")
@resume_option
@tracked(ClassifierConfig)
def train_classifier_cmd(cfg: ClassifierConfig, resume: str) -> None:
    """Train CheXNet on one setting and log it to MLflow (torchrun: data-parallel)."""
    with paused_collector():
        from pneumonia_aug.stages.train_classifier import run_train_classifier

    click.echo(run_train_classifier(cfg, resume_run_id=resume))


@main.command("train-gan")
@resume_option
@tracked(GANConfig)
def train_gan_cmd(cfg: GANConfig, resume: str) -> None:
    """Train a DCGAN or CGAN on the real training images and register its generator
    (torchrun: data-parallel)."""
    with paused_collector():
        from pneumonia_aug.stages.train_gan import run_train_gan

    click.echo(run_train_gan(cfg, resume_run_id=resume))


@main.command("gan-quality")
@tracked(QualityConfig)
def gan_quality_cmd(cfg: QualityConfig) -> None:
    """Measure a GAN run's kept images (FID/KID per sampled epoch, memorization) in an X-ray
    classifier's features, into that run."""
    with paused_collector():
        from pneumonia_aug.stages.gan_quality import measure

    click.echo(measure(cfg))


@main.command("generate")
@tracked(GenerateConfig)
def generate_cmd(cfg: GenerateConfig) -> None:
    """Draw NORMAL images from a registered generator and log them as a run."""
    with paused_collector():
        from pneumonia_aug.stages.generate import run_generate

    click.echo(run_generate(cfg))


def _width() -> int:
    return shutil.get_terminal_size((100, 24)).columns  # 100 where no terminal says


def _terminal_text(markdown: str) -> str:
    """Table 1's Markdown as aligned text as wide as the terminal."""
    from pneumonia_aug.evaluation.report_text import markdown_to_text

    return markdown_to_text(markdown, _width())


@main.command("compare")
@tracked(CompareConfig)
def compare_cmd(cfg: CompareConfig) -> None:
    """Build Table 1 (ours beside the paper's) from the classifier runs; print it, the files
    it wrote and the run it logged, with the address of its page."""
    from pneumonia_aug import tracking
    from pneumonia_aug.contract import TABLE_MD
    from pneumonia_aug.reachability import has_server

    with paused_collector():
        from pneumonia_aug.stages.compare import build_compare

    done = build_compare(cfg)
    click.echo(_terminal_text(done.paths[TABLE_MD].read_text()))
    uri = tracking.tracking_uri()
    served = "" if has_server(uri) else (
        f" (after `mlflow ui --backend-store-uri {uri}`)")
    for line in (f"Wrote {', '.join(p.name for p in done.paths.values())} to "
                 f"{Path(cfg.output_dir).resolve()}",
                 f"Logged run {done.run_id}; its page{served}:"):
        click.echo(textwrap.fill(line, _width(), break_long_words=False,
                                 break_on_hyphens=False))
    click.echo(tracking.run_address(done.run_id))


@main.command("study")
@click.option("--dry-run", is_flag=True, help="print the stages it would run or reuse and "
              "their estimated times (from the measured figures the package ships: "
              "docs/study.md); launch "
              "nothing")
@click.option("--plan-gpus", type=click.IntRange(min=0), default=None, help="with --dry-run: "
              "estimate for this many GPUs (0 = the CPU; default: this machine's)")
@tracked(StudyConfig)
def study_cmd(cfg: StudyConfig, dry_run: bool, plan_gpus: int | None) -> None:
    """Run (or resume) the whole study and print Table 1."""
    if dry_run:
        from pneumonia_aug.study.plan import plan_study

        click.echo(plan_study(cfg, plan_gpus))
        return
    with paused_collector():
        from pneumonia_aug.study.study import run_study

    click.echo(_terminal_text(run_study(cfg)))


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
    paths = [*images, *split_image_list(image_list), *read_images_file(images_file)]
    with paused_collector():
        from pneumonia_aug import tracking
        from pneumonia_aug.stages.predict import HEADER, predict_images

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


for group in (data, services, bench, kit):
    main.add_command(group)

"""`pneumonia-aug`: the command line; each MLproject entry point calls one command here.

Options accept both `--split-seed` and `--split_seed` spellings, because `mlflow run` passes
undeclared `-P key=value` pairs as `--key value`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import sys

import click

from pneumonia_aug.cli_types import UserErrorGroup, WholeNumber
from pneumonia_aug.config import EXPERIMENT_NAME, ClassifierConfig
from pneumonia_aug.training.gan import GANConfig

DEFAULT_FEATURE_MODEL = "models:/pneumonia-chexnet@champion"

log = logging.getLogger("pneumonia_aug")

CLASSIFIER_HELP = {
    "setting": "{Original|DCGAN|CGAN}-{r}-{g}, e.g. DCGAN-1.0-0.6",
    "seed": "seed of every random draw of the run",
    "split_seed": "seed of the validation split (shared by all settings)",
    "image_size": "working image size in px (square, stretched)",
    "epochs": "training epochs (paper: 100)",
    "batch_size": "batch size (paper: 16)",
    "lr": "Adam learning rate (paper: 1e-3, for batch 16)",
    "lr_scaling": "how lr follows batch_size: none (as given), linear or sqrt in batch / 16",
    "data_dir": "Kermany folder; default $PNEUMONIA_AUG_DATA_DIR or data/chest_xray",
    "synthetic_run_id": "generate run whose images a GAN setting adds (default: newest)",
    "max_images_per_split": "debug/test: cap each of train/val/test (0 = all)",
    "real_fraction_scope": "'normal' (authors' code) or 'all' (paper's wording)",
}


def config_options(config_cls, helps: dict):
    """Decorator adding one option per dataclass field, with the field's default."""
    types = {"int": WholeNumber(), "float": float, "str": str}

    def decorate(func):
        for field in reversed(dataclasses.fields(config_cls)):
            dashed = "--" + field.name.replace("_", "-")
            names = [dashed] + ([f"--{field.name}"] if "_" in field.name else [])
            func = click.option(*names, field.name, type=types[str(field.type)],
                                default=field.default, show_default=True,
                                help=helps.get(field.name, ""))(func)
        return func

    return decorate


@click.group(cls=UserErrorGroup)
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
def main(verbose: bool) -> None:
    """GAN data augmentation for pneumonia diagnosis (Tung et al.), tracked in MLflow."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("urllib3", "botocore", "matplotlib", "PIL", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # MLflow's client retries a failing server for minutes by default; a few tries are enough
    # for a blip, and a dead server is caught up front by `tracked` below.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")


def tracked(func):
    """Commands that log to MLflow check the tracking server first (fails in seconds)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from pneumonia_aug import tracking

        tracking.ensure_reachable(kwargs.get("experiment_name"))
        return func(*args, **kwargs)

    return wrapper


RESUME_HELP = ("continue this killed or failed run from its last checkpoint, into the same "
               "run; give the run's options again")


@main.command("train-classifier")
@config_options(ClassifierConfig, CLASSIFIER_HELP)
@click.option("--resume", default="", metavar="RUN_ID", help=RESUME_HELP)
@tracked
def train_classifier_cmd(resume: str, **params) -> None:
    """Train CheXNet on one setting and log it to MLflow (torchrun: data-parallel)."""
    from pneumonia_aug.stages.train_classifier import run_train_classifier

    run_id = run_train_classifier(ClassifierConfig(**params), resume_run_id=resume)
    click.echo(run_id)


@main.command("compare")
@click.option("--experiment-name", "--experiment_name", default=EXPERIMENT_NAME, show_default=True)
@click.option("--parent-run-id", "--parent_run_id", default="",
              help="only the runs of this study (default: every classifier run of the experiment)")
@click.option("--output-dir", "--output_dir", default="outputs/compare", show_default=True)
@click.option("--n-boot", "--n_boot", type=WholeNumber(), default=2000, show_default=True,
              help="bootstrap replicates of the paired test")
@tracked
def compare_cmd(experiment_name: str, parent_run_id: str, output_dir: str, n_boot: int) -> None:
    """Build Table 1 (ours beside the paper's) from the classifier runs."""
    from pathlib import Path

    from pneumonia_aug.stages.compare import run_compare

    run_compare(experiment_name, parent_run_id, output_dir, n_boot=n_boot)
    click.echo((Path(output_dir) / "table1.md").read_text())


@main.command("predict")
@click.option("--model", "model_uri", default="models:/pneumonia-chexnet@champion",
              show_default=True, help="a registered classifier (models:/NAME@ALIAS or /VERSION)")
@click.option("--output-dir", "--output_dir", default="outputs/predict", show_default=True,
              help="where the Grad-CAM overlays go")
@click.argument("images", nargs=-1)
@tracked
def predict_cmd(model_uri: str, output_dir: str, images: tuple[str, ...]) -> None:
    """Print the pneumonia probability and label of each image; write Grad-CAM overlays."""
    from pneumonia_aug.stages.predict import predict_images

    results = predict_images(model_uri, [i for arg in images for i in arg.split()], output_dir)
    for r in results:
        if r.error:
            click.echo(f"{r.image}\terror: {r.error}")
        else:
            click.echo(f"{r.image}\t{r.probability:.4f}\t{r.label}\t{r.heatmap}")
    if all(r.error for r in results):
        sys.exit(1)


GAN_HELP = {
    "model": "dcgan (NORMAL only) or cgan (both classes, labelled)",
    "epochs": "training epochs (authors' code: 500)",
    "batch_size": "batch size (authors' code: 128)",
    "lr_d": "discriminator Adam lr (authors' code 2e-5; the paper says 0.005)",
    "lr_g": "generator Adam lr (authors' code 1e-4; the paper says 0.005)",
    "lr_scaling": "how lr_d, lr_g follow batch_size: none, linear or sqrt in batch / 128",
    "diffaugment": "DiffAugment policy for D, e.g. color,translation,cutout ('' = off, faithful)",
    "sample_every": "epochs between sample grids and FID/KID evaluations (0 = never)",
    "max_images": "debug/test: train on at most this many images (0 = all)",
}


@main.command("train-gan")
@config_options(GANConfig, GAN_HELP)
@click.option("--feature-model-uri", "--feature_model_uri", default=DEFAULT_FEATURE_MODEL,
              show_default=True, help="X-ray classifier whose features FID/KID use ('' = skip)")
@click.option("--resume", default="", metavar="RUN_ID", help=RESUME_HELP)
@tracked
def train_gan_cmd(feature_model_uri: str, resume: str, **params) -> None:
    """Train a DCGAN or CGAN on the real training images and register its generator
    (torchrun: data-parallel)."""
    from pneumonia_aug.stages.train_gan import run_train_gan

    click.echo(run_train_gan(GANConfig(**params), feature_model_uri, resume_run_id=resume))


@main.command("generate")
@click.option("--model", default="dcgan", show_default=True, help="dcgan or cgan")
@click.option("--model-uri", "--model_uri", default="",
              help="generator to draw from (default: models:/pneumonia-<model>-generator@newest)")
@click.option("--n-images", "--n_images", type=WholeNumber(), default=4000, show_default=True)
@click.option("--seed", type=WholeNumber(), default=0, show_default=True)
@click.option("--experiment-name", "--experiment_name", default=EXPERIMENT_NAME, show_default=True)
@tracked
def generate_cmd(model: str, model_uri: str, n_images: int, seed: int,
                 experiment_name: str) -> None:
    """Draw NORMAL images from a registered generator and log them as a run."""
    from pneumonia_aug.stages.generate import run_generate

    click.echo(run_generate(model, model_uri, n_images, seed, experiment_name))


@main.command("study")
@click.option("--profile", default="quick", show_default=True,
              help="paper (256 px, 500 GAN / 100 classifier epochs) or quick (CPU-sized)")
@click.option("--seeds", default="0,1,2", show_default=True, help="comma-separated seeds")
@click.option("--settings", default="table1", show_default=True,
              help="table1 (the paper's 12 rows), all (+ the -1.0-1.0 rows) or a list")
@click.option("--data-dir", "--data_dir", default="", help="Kermany folder")
@click.option("--experiment-name", "--experiment_name", default=EXPERIMENT_NAME, show_default=True)
@click.option("--output-dir", "--output_dir", default="outputs/study", show_default=True)
@tracked
def study_cmd(profile, seeds, settings, data_dir, experiment_name, output_dir) -> None:
    """Run (or resume) the whole study and print Table 1."""
    from pneumonia_aug.stages.study import run_study

    click.echo(run_study(profile, seeds, settings, data_dir, experiment_name, output_dir))


@main.group()
def data() -> None:
    """Get and check the Kermany chest X-ray data."""


@data.command("download")
@click.option("--data-dir", "--data_dir", default="", help="target folder "
              "(default $PNEUMONIA_AUG_DATA_DIR or data/chest_xray)")
@click.option("--url", default=None, help="archive address (default: Mendeley Data)")
@click.option("--sha256", default=None, help="expected sha256 of the archive")
@click.option("--force", is_flag=True, help="download even if the folder is valid")
def data_download(data_dir: str, url: str | None, sha256: str | None, force: bool) -> None:
    """Fetch ChestXRay2017.zip (resumable), verify, unpack and validate it."""
    from pneumonia_aug.data import download
    from pneumonia_aug.data.kermany import DATA_DIR_ENV, DEFAULT_DATA_DIR

    target = data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    root = download.download_dataset(target, url=url or download.MENDELEY_URL, sha256=sha256,
                                     force=force)
    click.echo(str(root))


@data.command("check")
@click.option("--data-dir", "--data_dir", default="", help="Kermany folder")
def data_check(data_dir: str) -> None:
    """Validate a Kermany folder and print its image counts."""
    from pneumonia_aug.data.dataset import warn_skipped
    from pneumonia_aug.data.kermany import (
        dataset_digest,
        index_kermany,
        resolve_data_dir,
    )

    root = resolve_data_dir(data_dir)
    index, skipped = index_kermany(root)
    warn_skipped(skipped)
    counts = index.groupby(["split", "label"]).size().unstack(fill_value=0)
    click.echo(f"{root} (digest {dataset_digest(index)})\n{counts.to_string()}")


def _attach_groups() -> None:
    from pneumonia_aug.bench import bench
    from pneumonia_aug.services import services

    main.add_command(services)
    main.add_command(bench)


_attach_groups()

if __name__ == "__main__":
    main()

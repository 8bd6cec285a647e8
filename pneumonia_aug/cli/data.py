"""The `data` command group: get and check the Kermany chest X-ray data."""

from __future__ import annotations

import click

from pneumonia_aug.cli.options import fold_aliases, option
from pneumonia_aug.config import DATA_DIR_HELP


@click.group("data")
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



"""The `services` command group (what it runs: `pneumonia_aug/services/`)."""

from __future__ import annotations

from pathlib import Path

import click

from pneumonia_aug import logs
from pneumonia_aug.cli.types import UserErrorGroup
from pneumonia_aug.services.base import DEFAULT_DIR, HOST
from pneumonia_aug.services.stack import down, exports, status, up

dir_option = click.option("--dir", "root", default=DEFAULT_DIR, show_default=True,
                          type=click.Path(file_okay=False, path_type=Path),
                          help="folder holding all data, logs, state and credentials")


@click.group(cls=UserErrorGroup)
def services() -> None:
    """Run PostgreSQL, SeaweedFS (S3) and an MLflow server on 127.0.0.1."""
    logs.setup(plain=True)  # run on its own; under `pneumonia-aug` its setup stands


@services.command("up")
@dir_option
@click.option("--auth", is_flag=True, help="MLflow basic auth (user admin)")
@click.option("--port", default=5000, show_default=True, help="MLflow server port")
@click.option("--host", default=HOST, show_default=True,
              help="address the MLflow server binds to; anything but loopback needs --auth")
@click.option("--workers", default=2, show_default=True, help="MLflow server workers")
@click.option("--timeout", default=120.0, show_default=True, help="seconds per service")
def up_cmd(root: Path, auth: bool, port: int, host: str, workers: int, timeout: float) -> None:
    """Start the stack (idempotent); print the shell exports on stdout."""
    state, started = up(root, auth=auth, port=port, workers=workers, timeout=timeout,
                        host=host)
    click.echo(f"{'started' if started else 'already up'} in {root.resolve()}", err=True)
    for line in exports(root, state):
        click.echo(line)


@services.command("down")
@dir_option
def down_cmd(root: Path) -> None:
    """Stop every process `up` started; the data stays for the next `up`."""
    stopped = down(root)
    click.echo(f"stopped {', '.join(stopped)}" if stopped else "nothing was running",
               err=True)


@services.command("status")
@dir_option
def status_cmd(root: Path) -> None:
    """Say what runs where."""
    entries = status(root)
    if not entries:
        click.echo(f"no services recorded in {root.resolve()}")
    for s in entries:
        click.echo(f"{s['name']:<10} pid {s['pid'] or '-':<8} {s['address']:<24} "
                   f"{'alive' if s['alive'] else 'DEAD'}  log {s['log']}")

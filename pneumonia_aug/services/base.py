"""Constants of the stack, and the files in its folder: credentials and state."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from pneumonia_aug.errors import PneumoniaAugError

BUCKET = "mlflow"

DATABASE = "mlflow"

PG_USER = "mlflow"

ADMIN_USER = "admin"

HOST = "127.0.0.1"

DEFAULT_DIR = ".services"

PG_BIN_DEFAULT = "/usr/lib/postgresql/15/bin"

CREDENTIAL_ENV = {
    "s3_access_key": "PNEUMONIA_AUG_S3_ACCESS_KEY",
    "s3_secret_key": "PNEUMONIA_AUG_S3_SECRET_KEY",
    "postgres_password": "PNEUMONIA_AUG_POSTGRES_PASSWORD",
    "mlflow_admin_password": "PNEUMONIA_AUG_MLFLOW_ADMIN_PASSWORD",
    "mlflow_secret_key": "PNEUMONIA_AUG_MLFLOW_SECRET_KEY",  # signs --auth's CSRF tokens
}

# Baked in at the first `up` (initdb, auth store): a different value later would lock us out.
FIXED_CREDENTIALS = ("postgres_password", "mlflow_admin_password")


class ServiceError(PneumoniaAugError):
    """A local service that cannot be started, found or stopped."""


def write_private(path: Path, text: str) -> None:
    """Write a file that holds secrets, readable by its owner only from the start."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def resolve_credentials(root: Path) -> dict:
    """Environment over DIR/credentials.json over freshly generated; saved back to the file."""
    path = root / "credentials.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    creds = {}
    for name, env in CREDENTIAL_ENV.items():
        value = os.environ.get(env) or stored.get(name) or secrets.token_urlsafe(24)
        if name in FIXED_CREDENTIALS and stored.get(name) not in (None, value):
            raise ServiceError(f"{env} differs from the {name} stored in {path}, which "
                               f"{root} was created with: unset {env}, or `down` and delete "
                               f"{root} to start from scratch")
        creds[name] = value
    if len(creds["mlflow_admin_password"]) < 12:
        raise ServiceError("PNEUMONIA_AUG_MLFLOW_ADMIN_PASSWORD must have 12+ characters")
    write_private(path, json.dumps(creds, indent=1))
    return creds


def read_state(root: Path) -> dict | None:
    path = root / "state.json"
    return json.loads(path.read_text()) if path.exists() else None


def write_state(root: Path, state: dict) -> None:
    (root / "state.json").write_text(json.dumps(state, indent=1))

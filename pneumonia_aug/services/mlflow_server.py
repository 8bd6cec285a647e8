"""`mlflow server` on PostgreSQL, proxying artifacts to S3, optionally with basic auth."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pneumonia_aug.errors import TrackingError
from pneumonia_aug.reachability import check_tracking_server
from pneumonia_aug.services.base import (
    ADMIN_USER,
    BUCKET,
    DATABASE,
    HOST,
    PG_USER,
    write_private,
)
from pneumonia_aug.services.processes import spawn, start_time, wait_ready

# How long the auth app keeps a credential it has checked (MLflow's `auth_cache_ttl_seconds`,
# off by default): each check is a scrypt hash, about 0.1 s of CPU, and a client sends the
# password with every request, hundreds per training run (docs/tracking-server.md).
AUTH_CACHE_TTL_S = 60


def _write_auth_config(root: Path, creds: dict) -> Path:
    path = root / "basic_auth.ini"
    password = creds["mlflow_admin_password"].replace("%", "%%")  # configparser syntax
    write_private(path, "\n".join([
        "[mlflow]", "default_permission = READ",
        f"database_uri = sqlite:///{root / 'mlflow_auth.db'}",
        f"admin_username = {ADMIN_USER}", f"admin_password = {password}",
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
        f"auth_cache_ttl_seconds = {AUTH_CACHE_TTL_S}", ""]))
    return path


def _server_ready(uri: str) -> bool:
    try:
        check_tracking_server(uri, timeout=2)
        return True
    except TrackingError:
        return False


def client_host(host: str) -> str:
    """Where a client on this machine reaches a server bound to `host`."""
    return HOST if host in ("0.0.0.0", "::", "") else host


def start_mlflow(root: Path, creds: dict, pg_port: int, s3_endpoint: str, port: int,
                 auth: bool, workers: int, timeout: float, record, host: str = HOST) -> dict:
    """`mlflow server` on PostgreSQL, proxying artifacts to s3://mlflow/artifacts, bound to
    `host` (PostgreSQL and S3 stay on loopback: clients reach artifacts through it)."""
    # Drop the user's AWS/PG/auth settings: a stray AWS_PROFILE or PGHOST would redirect us.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "PG", "MLFLOW_AUTH_"))}
    env.update(MLFLOW_S3_ENDPOINT_URL=s3_endpoint, AWS_ACCESS_KEY_ID=creds["s3_access_key"],
               AWS_SECRET_ACCESS_KEY=creds["s3_secret_key"], MLFLOW_DISABLE_TELEMETRY="true",
               PGPASSWORD=creds["postgres_password"])  # libpq reads it: not visible in `ps`
    # MLflow's job runner (huey processes) serves GenAI features this project does not use
    # and slows the server's start (docs/tracking-server.md); set the variable to true to keep
    # it.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    cmd = [sys.executable, "-m", "mlflow", "server",
           "--backend-store-uri", f"postgresql+psycopg2://{PG_USER}@{HOST}:{pg_port}/{DATABASE}",
           "--serve-artifacts", "--artifacts-destination", f"s3://{BUCKET}/artifacts",
           "--host", host, "--port", str(port), "--workers", str(workers)]
    if auth:
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(_write_auth_config(root, creds))
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = creds["mlflow_secret_key"]
        cmd += ["--app-name", "basic-auth"]
    log_path = root / "logs/mlflow.log"
    pid = spawn(cmd, log_path, env)
    address = client_host(host)
    uri = f"http://{f'[{address}]' if ':' in address else address}:{port}"
    service = {"name": "mlflow", "pid": pid, "started": start_time(pid), "port": port,
               "address": uri, "log": str(log_path)}
    record(service)
    wait_ready("MLflow server", lambda: _server_ready(uri), service, timeout)
    return service

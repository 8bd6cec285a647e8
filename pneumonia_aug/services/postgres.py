"""PostgreSQL 15: MLflow's backend store, a private cluster in DIR/postgres."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from pneumonia_aug.services.base import (
    DATABASE,
    HOST,
    PG_BIN_DEFAULT,
    PG_USER,
    ServiceError,
    write_private,
)
from pneumonia_aug.services.processes import (
    free_ports,
    is_alive,
    start_time,
    stop_group,
)

log = logging.getLogger(__name__)


def _pg_bin() -> Path:
    folder = Path(os.environ.get("PNEUMONIA_AUG_PG_BIN") or PG_BIN_DEFAULT)
    if (folder / "pg_ctl").exists():
        return folder
    found = shutil.which("pg_ctl")
    if not found:
        raise ServiceError(f"PostgreSQL's pg_ctl is neither in {folder} nor on PATH: "
                           "`apt-get install -y postgresql`, or set PNEUMONIA_AUG_PG_BIN")
    return Path(found).parent


def _as_pg_owner(cmd: list) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user."""
    cmd = [str(part) for part in cmd]
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _give_to_pg(*paths: Path) -> None:
    if os.geteuid() == 0:
        for path in paths:
            shutil.chown(path, "postgres", "postgres")


def _initdb(bin_dir: Path, data: Path, password: str, log_path: Path) -> None:
    # The password travels in a file the postgres user can read, deleted right after.
    pwfile = data.parent / "pgsocket" / "initdb.pw"
    write_private(pwfile, password + "\n")
    _give_to_pg(pwfile)
    try:
        with open(log_path, "ab") as out:
            done = subprocess.run(_as_pg_owner(
                [bin_dir / "initdb", "-D", data, "-U", PG_USER, "--auth=scram-sha-256",
                 f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C"]),
                stdout=out, stderr=subprocess.STDOUT)
    finally:
        pwfile.unlink(missing_ok=True)
    if done.returncode:
        raise ServiceError(f"initdb failed: see {log_path}")


def _ensure_database(port: int, password: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host=HOST, port=port, user=PG_USER, password=password,
                            dbname="postgres", connect_timeout=5)
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if cur.fetchone() is None:
                cur.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        conn.close()


def start_postgres(root: Path, password: str, timeout: float, record) -> dict:
    """Start (after initdb on the first run) the cluster in DIR/postgres; create `mlflow`."""
    bin_dir = _pg_bin()
    data, sockets, log_path = root / "postgres", root / "pgsocket", root / "logs/postgres.log"
    for folder in (data, sockets):
        folder.mkdir(mode=0o700, exist_ok=True)
    log_path.touch()
    _give_to_pg(data, sockets, log_path)
    if os.geteuid() == 0 and subprocess.run(_as_pg_owner(["test", "-w", data])).returncode:
        raise ServiceError(f"the postgres user cannot reach {data}: every folder above it "
                           "needs o+x, or use --dir under one that does (e.g. /srv, /tmp)")
    if not (data / "PG_VERSION").exists():
        _initdb(bin_dir, data, password, log_path)
    # A unix socket path is limited to ~107 bytes: fall back to /tmp for deep folders.
    socket_dir = sockets if len(str(sockets)) < 90 else Path("/tmp")
    port = free_ports(1)[0]
    options = f"-c listen_addresses={HOST} -p {port} -k '{socket_dir}'"
    service = {"name": "postgres", "pid": None, "started": None, "port": port,
               "address": f"{HOST}:{port}", "log": str(log_path)}
    record(service)  # before starting: `down` then runs pg_ctl stop even if start fails
    started = subprocess.run(_as_pg_owner(
        [bin_dir / "pg_ctl", "-D", data, "-l", log_path, "-o", options, "-w",
         "-t", int(timeout), "start"]), capture_output=True, text=True)
    if started.returncode:
        raise ServiceError(f"PostgreSQL did not start ({started.stderr.strip()}): "
                           f"see {log_path}")
    service["pid"] = int((data / "postmaster.pid").read_text().split()[0])
    service["started"] = start_time(service["pid"])
    record(service)
    _ensure_database(port, password)
    return service


def stop_postgres(root: Path, service: dict) -> None:
    """`pg_ctl stop -m fast`: a clean shutdown; the postmaster's group only as a fallback."""
    try:
        subprocess.run(_as_pg_owner([_pg_bin() / "pg_ctl", "-D", root / "postgres", "-m",
                                     "fast", "-w", "-t", "30", "stop"]),
                       capture_output=True, timeout=40)
    except (ServiceError, subprocess.TimeoutExpired) as exc:
        log.warning("pg_ctl stop failed (%s): signalling the postmaster", exc)
    if is_alive(service):
        stop_group(service["pid"])

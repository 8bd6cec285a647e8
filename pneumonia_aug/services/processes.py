"""Ports and process groups: start a service in a process group of its own, know if it lives,
stop it."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from pneumonia_aug import machine
from pneumonia_aug.services.base import HOST, ServiceError

log = logging.getLogger(__name__)
STOP_GRACE_S = 10.0


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now; held open together so they are all distinct."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def require_free(port: int) -> None:
    """Refuse a port something listens on. A stopped server's closed connections stay on its
    port in TIME-WAIT for a minute; servers bind with SO_REUSEADDR past them, so this probe
    does too (it still fails on a live listener)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise ServiceError(f"port {port} on {HOST} is in use: pass --port with a free "
                               "one") from exc


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or `localhost`; any other name counts as reachable from outside."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def require_loopback_unless_auth(host: str, auth: bool) -> None:
    """Without --auth, anyone who reaches the server can read and change every run and
    artifact (it also holds the S3 key): only this machine may reach it."""
    if not auth and not is_loopback(host):
        raise ServiceError(f"--host {host} would open the MLflow server to the network without "
                           "a password: add --auth, or keep the default --host 127.0.0.1")


start_time = machine.start_time


def is_alive(service: dict) -> bool:
    """True if the service's process still runs: same pid *and* start time (no pid reuse)."""
    pid = service.get("pid")
    if not pid:
        return False
    _reap(pid)
    found = machine.process(pid)
    return found is not None and found == (machine.RUNNING, service["started"])


group_members = machine.group_members


def _reap(pid: int) -> None:
    """Collect `pid` if it is our exited child, so it stops counting as alive."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def spawn(cmd: list[str], log_path: Path, env: dict | None = None) -> int:
    """Start `cmd` as the leader of a new process group (so `down` can stop the whole group);
    return its pid."""
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
            if not group_members(pgid):
                return
            time.sleep(0.2)
    log.warning("process group %d survived SIGKILL", pgid)


def wait_ready(name: str, ready, service: dict, timeout: float) -> None:
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


def is_ours(service: dict) -> bool:
    """Its leader alive, or gone while its group lives on (a pgid in use is never reused)."""
    pid = service.get("pid")
    if not pid or is_alive(service):
        return bool(pid)
    found = machine.process(pid)
    if found and found[1] != service["started"]:
        return False  # the pid now belongs to another program
    return bool(group_members(pid))

"""The port check of `services up`: a live listener is "in use", TIME-WAIT leftovers are not.

After real traffic, a stopped server leaves its closed connections in TIME-WAIT on its port
for a minute; the servers bind with SO_REUSEADDR and start fine, so `up` must not refuse.
The same fault through the real stack is step 8 of `test_stack_end_to_end` in
test_stack_e2e.py.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from conftest import closing_sockets
from pneumonia_aug.services import processes
from pneumonia_aug.services.base import HOST, ServiceError


def _listener(address: str = HOST, port: int = 0) -> socket.socket:
    """A listening socket bound the way the servers (uvicorn, postgres, weed) bind."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen()
    return sock


def _time_wait_on_a_port() -> int:
    """A port where nothing listens, with a closed connection in TIME-WAIT on it."""
    with _listener() as listener:
        port = listener.getsockname()[1]
        client = socket.create_connection((HOST, port))
        conn, _ = listener.accept()
        conn.close()  # the server side closes first: it is the one left in TIME-WAIT
        client.recv(1)  # the server's FIN
        client.close()
    return port


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_time_wait_leftovers_do_not_count_as_in_use():
    port = _time_wait_on_a_port()
    assert "TIME-WAIT" in closing_sockets().get(port, ())  # what the check must see past
    processes.require_free(port)
    _listener(port=port).close()  # and a server can indeed bind it


@pytest.mark.parametrize("reuse", [False, True])
def test_a_live_listener_is_in_use(reuse):
    with socket.socket() as listener:
        if reuse:  # as the servers themselves bind
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, 0))
        listener.listen()
        with pytest.raises(ServiceError, match="in use"):
            processes.require_free(listener.getsockname()[1])


def test_a_listener_on_all_addresses_is_in_use():
    with _listener("0.0.0.0") as listener:
        with pytest.raises(ServiceError, match="in use"):
            processes.require_free(listener.getsockname()[1])

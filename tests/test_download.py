"""download_dataset against a local HTTP server on 127.0.0.1 (no other network)."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from pneumonia_aug.data import download, fetch
from pneumonia_aug.data.download import ARCHIVE_NAME, DOWNLOAD_DIR, download_dataset
from pneumonia_aug.data.kermany import check_layout
from pneumonia_aug.errors import DownloadError

CLASS_FILES = [
    f"{split}/{label}/{name}"
    for split in ("train", "test")
    for label, name in (("NORMAL", "IM-0001-0001.jpeg"), ("PNEUMONIA", "person1_bacteria_1.jpeg"))
]


def _jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    # Noise, so the JPEGs (and the zip) are a few KB: enough to cut a transfer in the middle.
    pixels = bytes((seed * 31 + i * 17) % 256 for i in range(32 * 32))
    Image.frombytes("L", (32, 32), pixels).save(buffer, "JPEG")
    return buffer.getvalue()


def make_zip(prefix: str = "chest_xray/", extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i, name in enumerate(CLASS_FILES):
            archive.writestr(prefix + name, _jpeg(i))
        archive.writestr(prefix + "train/.DS_Store", b"\0\0\0\1Bud1")
        archive.writestr("__MACOSX/" + prefix + "train/NORMAL/._IM-0001-0001.jpeg", b"junk")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


class Server:
    """Serves `payload`; records each request's headers; can cut or ignore Range."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.requests: list[dict[str, str]] = []
        self.cut_after: int | None = None  # body bytes sent before closing the connection
        self.cut_every = False  # cut every response, not only the first
        self.honour_range = True
        self.status = 200
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                server.requests.append(dict(self.headers))
                if server.status != 200:
                    self.send_error(server.status)
                    return
                start = 0
                match = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
                if match and server.honour_range:
                    start = int(match.group(1))
                    if start >= len(server.payload):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    end = len(server.payload) - 1
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(server.payload)}")
                else:
                    self.send_response(200)
                body = server.payload[start:]
                self.send_header("Content-Length", str(len(body)))  # the full length, always
                self.end_headers()
                if server.cut_after is not None and (server.cut_every or len(server.requests) == 1):
                    self.wfile.write(body[: server.cut_after])
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{ARCHIVE_NAME}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _local_only(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(fetch, "RETRY_WAIT_S", 0.0)


@pytest.fixture
def serve():
    servers = []

    def start(payload: bytes) -> Server:
        servers.append(Server(payload))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def get(server, data_dir, **kwargs):
    return download_dataset(data_dir, url=server.url, progress=False, timeout=5, **kwargs)


def assert_unpacked(data_dir):
    assert check_layout(data_dir) == ["train", "test"]
    for i, name in enumerate(CLASS_FILES):
        assert (data_dir / name).read_bytes() == _jpeg(i)
        with Image.open(data_dir / name) as image:
            assert image.size == (32, 32)
    assert not (data_dir / "__MACOSX").exists()
    assert not (data_dir / "train" / ".DS_Store").exists()
    assert not (data_dir / "chest_xray").exists()


def recorded_sha(data_dir) -> str:
    return (data_dir / DOWNLOAD_DIR / f"{ARCHIVE_NAME}.sha256").read_text().split()[0]


def test_full_download_unpacks_and_validates(serve, tmp_path):
    server = serve(make_zip())
    data_dir = tmp_path / "data"
    assert get(server, data_dir) == data_dir.resolve()
    assert_unpacked(data_dir)
    assert "Range" not in server.requests[0]
    assert not (data_dir / DOWNLOAD_DIR / ARCHIVE_NAME).exists()  # archive removed once unpacked
    assert not (data_dir / DOWNLOAD_DIR / "unpacked").exists()


def test_archive_nested_one_level_deeper(serve, tmp_path):
    server = serve(make_zip(prefix="ChestXRay2017/chest_xray/"))
    get(server, tmp_path / "data")
    assert_unpacked(tmp_path / "data")


def test_first_download_records_sha256(serve, tmp_path, caplog):
    payload = make_zip()
    server = serve(payload)
    with caplog.at_level(logging.INFO, logger="pneumonia_aug.data.archive"):
        get(server, tmp_path / "data")
    digest = hashlib.sha256(payload).hexdigest()
    assert recorded_sha(tmp_path / "data") == digest
    assert any(digest in r.getMessage() and "recorded" in r.getMessage() for r in caplog.records)


def test_later_download_compared_with_recorded_sha256(serve, tmp_path):
    data_dir = tmp_path / "data"
    get(serve(make_zip()), data_dir)
    changed = serve(make_zip(extra={"chest_xray/README.txt": b"changed"}))
    with pytest.raises(DownloadError, match="checksum mismatch"):
        get(changed, data_dir, force=True)
    assert recorded_sha(data_dir) != hashlib.sha256(changed.payload).hexdigest()


def test_given_sha256_accepted_and_wrong_one_refused(serve, tmp_path):
    payload = make_zip()
    server = serve(payload)
    get(server, tmp_path / "ok", sha256=hashlib.sha256(payload).hexdigest().upper())
    assert_unpacked(tmp_path / "ok")
    with pytest.raises(DownloadError) as caught:
        get(server, tmp_path / "bad", sha256="0" * 64)
    message = str(caught.value)
    assert "checksum" in message and "--sha256" in message and "Delete" in message
    assert not (tmp_path / "bad" / "train").exists()


def test_valid_folder_is_not_downloaded_again(serve, tmp_path):
    server = serve(make_zip())
    data_dir = tmp_path / "data"
    get(server, data_dir)
    assert len(server.requests) == 1
    assert get(server, data_dir) == data_dir.resolve()
    assert len(server.requests) == 1
    get(server, data_dir, force=True)
    assert len(server.requests) == 2
    assert_unpacked(data_dir)


def test_incomplete_folder_refused_before_downloading(serve, tmp_path):
    server = serve(make_zip())
    (tmp_path / "data" / "train" / "NORMAL").mkdir(parents=True)
    with pytest.raises(DownloadError, match="--force"):
        get(server, tmp_path / "data")
    assert server.requests == []


def test_resume_after_broken_connection(serve, tmp_path):
    payload = make_zip()
    server = serve(payload)
    cut = len(payload) // 2
    server.cut_after = cut
    data_dir = tmp_path / "data"
    get(server, data_dir)
    assert len(server.requests) == 2
    assert "Range" not in server.requests[0]
    assert server.requests[1]["Range"] == f"bytes={cut}-"
    assert recorded_sha(data_dir) == hashlib.sha256(payload).hexdigest()
    assert_unpacked(data_dir)


def test_complete_part_file_is_used(serve, tmp_path):
    payload = make_zip()
    server = serve(payload)
    workdir = tmp_path / "data" / DOWNLOAD_DIR
    workdir.mkdir(parents=True)
    (workdir / f"{ARCHIVE_NAME}.part").write_bytes(payload)  # a run stopped before renaming
    get(server, tmp_path / "data")
    assert [r["Range"] for r in server.requests] == [f"bytes={len(payload)}-"]
    assert_unpacked(tmp_path / "data")


def test_restart_when_server_ignores_range(serve, tmp_path):
    payload = make_zip()
    server = serve(payload)
    server.cut_after = len(payload) // 3
    server.honour_range = False
    get(server, tmp_path / "data")
    assert server.requests[1]["Range"] == f"bytes={len(payload) // 3}-"
    assert recorded_sha(tmp_path / "data") == hashlib.sha256(payload).hexdigest()
    assert_unpacked(tmp_path / "data")


def test_gives_up_after_retries_and_keeps_part(serve, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "RETRIES", 3)
    server = serve(make_zip())
    server.cut_after, server.cut_every = 10, True
    with pytest.raises(DownloadError, match="resumes"):
        get(server, tmp_path / "data")
    assert len(server.requests) == 3
    assert (tmp_path / "data" / DOWNLOAD_DIR / f"{ARCHIVE_NAME}.part").stat().st_size == 30


def test_http_error_is_not_retried(serve, tmp_path):
    server = serve(make_zip())
    server.status = 404
    with pytest.raises(DownloadError, match="404"):
        get(server, tmp_path / "data")
    assert len(server.requests) == 1


def test_zip_slip_member_refused(serve, tmp_path):
    server = serve(make_zip(extra={"../evil": b"owned"}))
    data_dir = tmp_path / "data"
    with pytest.raises(DownloadError, match="outside"):
        get(server, data_dir)
    assert list(tmp_path.rglob("evil")) == []
    assert not (data_dir / "train").exists()


def test_count_mismatch_is_a_warning(serve, tmp_path, caplog, monkeypatch):
    server = serve(make_zip())
    with caplog.at_level(logging.WARNING, logger=download.__name__):
        get(server, tmp_path / "a")
    assert any("differ" in r.getMessage() and "1349" in r.getMessage() for r in caplog.records)
    caplog.clear()
    monkeypatch.setattr(download, "EXPECTED_COUNTS", {k: 1 for k in download.EXPECTED_COUNTS})
    with caplog.at_level(logging.WARNING, logger=download.__name__):
        get(server, tmp_path / "b")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []

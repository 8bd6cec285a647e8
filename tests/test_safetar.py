"""The one tar extraction the package uses refuses archives that would write outside their
folder, by its own checks (so on Pythons without `extractall(filter=...)` too), and unpacks
an ordinary archive, links inside it included."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from pneumonia_aug.kit.safetar import UnsafeArchiveError, extract


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    data = b"x" if kind == tarfile.REGTYPE else b""
    info.size = len(data)
    return info, io.BytesIO(data)


def _archive(path: Path, *members: tuple) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, data)
    return path


MALICIOUS = {
    "absolute path": [_member("/tmp/escaped")],
    "dot-dot": [_member("../escaped")],
    "dot-dot inside": [_member("ok/../../escaped")],
    "absolute symlink": [_member("link", tarfile.SYMTYPE, "/etc")],
    "symlink out": [_member("sub/link", tarfile.SYMTYPE, "../../escaped")],
    "hard link out": [_member("link", tarfile.LNKTYPE, "../escaped")],
    "character device": [_member("null", tarfile.CHRTYPE)],
    "block device": [_member("disk", tarfile.BLKTYPE)],
    "fifo": [_member("pipe", tarfile.FIFOTYPE)],
    # each link alone stays inside; together `d/up/link` would point above the folder
    "through an earlier link": [_member("d/up", tarfile.SYMTYPE, ".."),
                                _member("d/up/link", tarfile.SYMTYPE, "..")],
}


@pytest.mark.parametrize("case", MALICIOUS)
def test_unsafe_members_are_refused_and_nothing_lands_outside(case, tmp_path):
    archive = _archive(tmp_path / "evil.tar.gz", *MALICIOUS[case])
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(UnsafeArchiveError, match=r"^unsafe member .* in the archive: "):
        extract(archive, dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep", "evil.tar.gz"]
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["dest"]


def test_an_ordinary_archive_unpacks_links_inside_included(tmp_path):
    archive = _archive(tmp_path / "ok.tar.gz", _member("a/file.txt"),
                       _member("a/link", tarfile.SYMTYPE, "file.txt"),
                       _member("a/hard", tarfile.LNKTYPE, "a/file.txt"),
                       _member("b/up", tarfile.SYMTYPE, "../a"))
    extract(archive, tmp_path / "dest")
    dest = tmp_path / "dest"
    assert (dest / "a" / "link").read_bytes() == b"x" and (dest / "a" / "hard").read_bytes() == b"x"
    assert (dest / "b" / "up" / "file.txt").read_bytes() == b"x"

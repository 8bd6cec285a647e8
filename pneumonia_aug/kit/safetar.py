"""Unpack a tar archive without letting it write outside the target folder, on any Python 3.11.

`TarFile.extractall(filter="data")` does this from Python 3.11.4 on; Debian 12's 3.11.2 lacks
the argument. So every member is checked here, whatever the Python: no absolute names, no
`..`, no link whose target lies outside the folder, no device files or FIFOs. The checks
resolve links already on disk, and run as each member is reached, so a link unpacked earlier
cannot redirect a later member. Where Python has the `data` filter it is applied as well.
Stdlib only: `kit run` unpacks its data with it before any wheel is installed.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath
from typing import Iterator

from pneumonia_aug.errors import PneumoniaAugError


class UnsafeArchiveError(PneumoniaAugError):
    """A tar member that would land outside the folder it is unpacked into, or a device file."""


def _inside(path: str, root: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root + os.sep)


def check_member(member: tarfile.TarInfo, root: str) -> None:
    """Raise UnsafeArchiveError unless `member`, unpacked into `root` (a resolved folder) as
    the disk stands now, stays inside it."""
    name = member.name
    refuse = f"unsafe member {name!r} in the archive: "
    if PurePosixPath(name).is_absolute():
        raise UnsafeArchiveError(refuse + "absolute path")
    if ".." in PurePosixPath(name).parts:
        raise UnsafeArchiveError(refuse + "'..' in its path")
    if member.ischr() or member.isblk() or member.isfifo():
        raise UnsafeArchiveError(refuse + "device file or FIFO")
    if not _inside(os.path.join(root, name), root):
        raise UnsafeArchiveError(refuse + "its path goes through a link out of the folder")
    if member.issym() or member.islnk():
        if os.path.isabs(member.linkname):
            raise UnsafeArchiveError(refuse + f"link to the absolute path {member.linkname!r}")
        # a symbolic link's target is relative to its folder, a hard link's to the archive's root
        base = os.path.dirname(name) if member.issym() else ""
        if not _inside(os.path.join(root, base, member.linkname), root):
            raise UnsafeArchiveError(refuse + f"link to {member.linkname!r}, out of the folder")


def _checked(tar: tarfile.TarFile, root: str) -> Iterator[tarfile.TarInfo]:
    for member in tar:  # lazily: extractall unpacks each before the next is checked
        check_member(member, root)
        yield member


def extract(archive: Path, dest: Path) -> None:
    """Unpack the tar `archive` (any compression) into `dest`, created if missing; raise
    UnsafeArchiveError at the first unsafe member."""
    dest.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(dest)
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
            tar.extractall(root, members=_checked(tar, root), filter="data")
        else:
            tar.extractall(root, members=_checked(tar, root))

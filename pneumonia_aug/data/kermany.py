"""Index a Kermany-layout folder (Kermany et al., Cell 2018; Mendeley doi 10.17632/rscbjbr9sj.2).

Layout: `ROOT/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg`. `train/` and `test/` are required;
`val/` is optional (the Mendeley archive has none, Kaggle's copy has 8+8 images). A missing
or misspelled split or class folder is an error naming the expected folders, never a silent
skip (the authors' own README spells the class `NEUMONIA`).

The index is a DataFrame with one row per candidate image file:
`path, relpath, split, label, patient_id, subtype, sha256, origin`. Files that are plainly not
images (`.DS_Store`, `Thumbs.db`, other extensions, empty files) are returned separately as
`SkippedFile`s; corrupt images are found later, when they are decoded.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pneumonia_aug.errors import DataLayoutError, DataMissingError

SPLITS = ("train", "val", "test")
REQUIRED_SPLITS = ("train", "test")
CLASSES = ("NORMAL", "PNEUMONIA")
POSITIVE = "PNEUMONIA"  # the positive class of every metric
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
# Folders that archivers add and that are never data.
IGNORED_DIRS = {"__MACOSX"}
INDEX_COLUMNS = ["path", "relpath", "split", "label", "patient_id", "subtype", "sha256", "origin"]
# Images per (split, label) in the Mendeley archive (docs/protocol.md, "Data"). Its train/ is
# Kaggle's train + val, so a copy with val/ is compared after merging val into train.
EXPECTED_COUNTS = {
    ("train", "NORMAL"): 1349,
    ("train", "PNEUMONIA"): 3883,
    ("test", "NORMAL"): 234,
    ("test", "PNEUMONIA"): 390,
}
DATA_DIR_ENV = "PNEUMONIA_AUG_DATA_DIR"
DEFAULT_DATA_DIR = "data/chest_xray"

# `NORMAL2-IM-1427-0001.jpeg` -> `NORMAL2-IM-1427`; `IM-0115-0001.jpeg` -> `IM-0115`
_NORMAL_ID = re.compile(r"^((?:NORMAL2-)?IM-\d+)-")
# `person1946_bacteria_4874.jpeg` -> (`person1946`, `bacteria`)
_PNEUMONIA_ID = re.compile(r"^(person\d+)_(bacteria|virus)_", re.IGNORECASE)


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


def parse_patient(filename: str) -> tuple[str, str]:
    """(patient_id, subtype) from a Kermany file name; unknown names are their own patient."""
    if match := _NORMAL_ID.match(filename):
        return match.group(1), ""
    if match := _PNEUMONIA_ID.match(filename):
        return match.group(1), match.group(2).lower()
    return Path(filename).stem, ""


def default_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data folder a command uses, the one rule for it: `data_dir` when given, else
    `$PNEUMONIA_AUG_DATA_DIR`, else `data/chest_xray` (relative to the working directory).
    The folder need not exist (`data download` creates it); `resolve_data_dir` checks it."""
    return Path(data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser()


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """`default_data_dir(data_dir)` as an absolute path; `DataMissingError` unless it is a
    folder, saying how to get the data."""
    chosen = default_data_dir(data_dir)
    root = chosen.resolve()
    if not root.is_dir():
        raise DataMissingError(
            f"no Kermany chest X-ray data at {root}. Get it with "
            f"`pneumonia-aug data download --data-dir {chosen}`, or point --data-dir "
            f"(or ${DATA_DIR_ENV}) at an existing copy with train/ and test/ folders."
        )
    return root


def _visible_dirs(folder: Path) -> list[str]:
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in IGNORED_DIRS
    )


def _check_folders(folder: Path, allowed: tuple, required: tuple, kind: str,
                   expected: str) -> list[str]:
    """The visible subfolders of `folder`; raises naming missing and unexpected ones."""
    present = _visible_dirs(folder)
    missing = [name for name in required if name not in present]
    unknown = [name for name in present if name not in allowed]
    problems = ([f"missing {kind} folder(s) {missing}"] if missing else []) + \
        ([f"unexpected folder(s) {unknown} (misspelled?)"] if unknown else [])
    if problems:
        raise DataLayoutError(f"{'; '.join(problems)} in {folder}: {expected}")
    return present


def check_layout(root: Path) -> list[str]:
    """Validate the folder tree; return the splits present. Raises `DataLayoutError`."""
    expected = (
        f"expected {root}/{{train,test}}/{{NORMAL,PNEUMONIA}} (val/ optional, same classes)"
    )
    present = _check_folders(root, SPLITS, REQUIRED_SPLITS, "split", expected)
    splits = [s for s in SPLITS if s in present]
    for split in splits:
        _check_folders(root / split, CLASSES, CLASSES, "class", expected)
    return splits


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def index_kermany(root: str | os.PathLike) -> tuple[pd.DataFrame, list[SkippedFile]]:
    """Scan a Kermany folder into an index; return it with the files skipped as non-images."""
    root = Path(root)
    rows, skipped = [], []
    for split in check_layout(root):
        for label in CLASSES:
            for path in sorted((root / split / label).iterdir()):
                if path.is_dir():
                    skipped.append(SkippedFile(str(path), "a folder inside a class folder"))
                    continue
                if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("._"):
                    skipped.append(SkippedFile(str(path), "not an image file"))
                    continue
                if path.stat().st_size == 0:
                    skipped.append(SkippedFile(str(path), "empty file"))
                    continue
                patient_id, subtype = parse_patient(path.name)
                rows.append(
                    {
                        "path": str(path),
                        "relpath": str(path.relative_to(root)),
                        "split": split,
                        "label": label,
                        "patient_id": patient_id,
                        "subtype": subtype,
                        "sha256": file_sha256(path),
                        "origin": "real",
                    }
                )
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    for split in REQUIRED_SPLITS:
        for label in CLASSES:
            if not ((index["split"] == split) & (index["label"] == label)).any():
                raise DataLayoutError(
                    f"{root / split / label} holds no images: the classifier needs both "
                    f"classes in train/ and test/"
                )
    return index, skipped


def dataset_digest(index: pd.DataFrame) -> str:
    """A short digest of which images are where: split, label and content of every row."""
    digest = hashlib.sha256()
    for split, label, sha in sorted(zip(index["split"], index["label"], index["sha256"],
                                        strict=True)):
        digest.update(f"{split}/{label}/{sha}\n".encode())
    return digest.hexdigest()[:16]

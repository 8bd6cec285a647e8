"""A damaged decode-cache entry (truncated by a full disk or a killed copy) is a miss, not a crash.

Fills the cache through `load_classifier_data` from a few real X-rays of ../shared/data/chest_xray,
damages four entries (cut in the header, cut in the data, zero-length, a valid array of the
wrong shape), and loads again.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from pneumonia_aug.data.dataset import load_classifier_data
from pneumonia_aug.settings import parse_setting

PER_SPLIT = {"train": 12, "val": 2, "test": 3}  # per class


def _real_tree(source: Path, dest: Path) -> Path:
    """A small Kermany tree of real images: the first few files of each split and class."""
    for split, n in PER_SPLIT.items():
        for label in ("NORMAL", "PNEUMONIA"):
            (dest / split / label).mkdir(parents=True)
            for path in sorted((source / split / label).glob("*.jpeg"))[:n]:
                shutil.copy(path, dest / split / label / path.name)
    return dest


def _load(data_dir: Path, cache_dir: Path):
    data = load_classifier_data(parse_setting("Original-1.0-0.0"), data_dir=str(data_dir),
                                cache_dir=str(cache_dir), image_size=32, split_seed=0, seed=0,
                                real_fraction_scope="normal")
    return {name: getattr(data, name).images for name in ("train", "val", "test")}


def test_damaged_entries_are_warned_removed_and_rebuilt(shared_data, tmp_path, caplog):
    data_dir = _real_tree(shared_data, tmp_path / "chest_xray")
    cache_dir = tmp_path / "cache"
    first = _load(data_dir, cache_dir)
    entries = sorted(cache_dir.rglob("*.npy"))
    assert len(entries) == 2 * sum(PER_SPLIT.values())
    good = {p: p.read_bytes() for p in entries}

    header_cut, data_cut, empty, wrong = entries[3], entries[5], entries[7], entries[11]
    header_cut.write_bytes(good[header_cut][:40])
    data_cut.write_bytes(good[data_cut][:-100])
    empty.write_bytes(b"")
    np.save(wrong, np.zeros((16, 16), np.uint8))  # readable, but not a 32 px image
    with caplog.at_level(logging.WARNING):
        second = _load(data_dir, cache_dir)

    for name in first:
        assert np.array_equal(first[name], second[name]), name
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 4, warnings
    for damaged in (header_cut, data_cut, empty, wrong):
        assert any(str(damaged) in w for w in warnings), (damaged, warnings)
    assert {p: p.read_bytes() for p in sorted(cache_dir.rglob("*.npy"))} == good
    assert not list(cache_dir.rglob("*.tmp"))

    # Repaired for good: a third run reads every entry from the cache, silently.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        third = _load(data_dir, cache_dir)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    for name in first:
        assert np.array_equal(first[name], third[name]), name

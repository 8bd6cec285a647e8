"""Splits and subsets of docs/protocol.md.

- Test: the official `test/`, untouched.
- Validation: a stratified, patient-grouped `VAL_FRACTION` of the real training pool
  (`train/` + `val/` when present, so Kaggle's and Mendeley's copies split alike), fixed by
  `split_seed`. Byte-identical images under different patient ids (the set has 30 such
  groups) are kept together too.
- Setting subsets: `r` of the real NORMAL training images (or of every class with
  `real_fraction_scope=all`), `round(g * n)` of the generated images; drawn with the run's
  seed, stratified by label and subtype.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

# docs/protocol.md: 10% of the real training pool, patient-grouped and stratified.
VAL_FRACTION = 0.1
SPLIT_BY = ("label", "patient_id", "sha256")  # the columns the validation split reads
SPLITS_DIR = "splits"  # in the cache folder (data.cache): one file per pool, seed and fraction
log = logging.getLogger(__name__)


def patient_groups(index: pd.DataFrame) -> np.ndarray:
    """Group ids joining rows that share a patient id or identical bytes (union-find)."""
    parent = list(range(len(index)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for column in ("patient_id", "sha256"):
        first: dict[str, int] = {}
        for i, key in enumerate(index[column].to_numpy()):
            if key in first:
                parent[find(i)] = find(first[key])
            else:
                first[key] = i
    return np.array([find(i) for i in range(len(index))])


def split_train_val(
    index: pd.DataFrame, split_seed: int = 0, val_fraction: float = VAL_FRACTION,
    cache_dir: str = "",
) -> pd.DataFrame:
    """Return the index with a `subset` column: `train`, `val` or `test`. The split is kept
    under `cache_dir` ("" = the default cache folder, `data.cache`)."""
    # Imported here (as in `_store`): a study's plan reads this module's
    # VAL_FRACTION without loading the image cache (PIL, tqdm).
    from pneumonia_aug.data.cache import default_cache_dir

    out = index.copy()
    out["subset"] = np.where(out["split"] == "test", "test", "train")
    pool = out.index[out["split"] != "test"]
    columns = tuple(tuple(out.loc[pool, name]) for name in SPLIT_BY)
    folder = str(Path(cache_dir) if cache_dir else default_cache_dir())
    out.loc[pool[list(_val_positions(columns, split_seed, val_fraction, folder))],
            "subset"] = "val"
    return out


@functools.lru_cache(maxsize=4)
def _val_positions(columns: tuple[tuple, ...], split_seed: int, val_fraction: float,
                   cache_dir: str) -> tuple[int, ...]:
    """The validation rows' positions in the pool whose `SPLIT_BY` columns are `columns`.
    Kept for the process, and in `cache_dir` for the next one: on the full data set the
    grouped split takes about 2 s of CPU and loading scikit-learn another 1, and every stage
    process of a study splits the same pool. The file is named by a digest of the columns, the
    seed, the fraction, scikit-learn's version and this module's code, so that any change to
    what decides the split makes a new one."""
    key = repr((columns, split_seed, val_fraction,
                importlib.metadata.version("scikit-learn"), Path(__file__).read_bytes()))
    entry = Path(cache_dir) / SPLITS_DIR / f"{hashlib.sha256(key.encode()).hexdigest()}.json"
    try:
        positions = tuple(json.loads(entry.read_text()))
        if positions and all(isinstance(i, int) and 0 <= i < len(columns[0]) for i in positions):
            return positions
    except (OSError, ValueError, TypeError):
        pass  # none yet, or damaged: split again
    positions = _split(columns, split_seed, val_fraction)
    _store(entry, positions)
    return positions


def _split(columns: tuple[tuple, ...], split_seed: int, val_fraction: float) -> tuple[int, ...]:
    # Imported here: a study process reads VAL_FRACTION (its estimates) without loading sklearn.
    from sklearn.model_selection import StratifiedGroupKFold

    labels, patients, digests = columns
    n_splits = max(2, round(1 / val_fraction))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=split_seed)
    groups = patient_groups(pd.DataFrame({"patient_id": patients, "sha256": digests}))
    _, val_pos = next(splitter.split(np.zeros(len(labels)), np.asarray(labels), groups))
    return tuple(int(i) for i in val_pos)


def _store(entry: Path, positions: tuple[int, ...]) -> None:
    """A cache folder that cannot be written costs the next process the split, nothing else."""
    from pneumonia_aug.data.cache import write_atomically

    try:
        write_atomically(entry, lambda handle: json.dump(list(positions), handle), mode="w")
    except OSError as exc:
        log.debug("validation split not kept in %s: %s", entry.parent, exc)


def stratified_sample(
    frame: pd.DataFrame, fraction: float, rng: np.random.Generator, by: list[str]
) -> pd.DataFrame:
    """Keep `round(fraction * n)` rows of each stratum, drawn with `rng`, in original order."""
    keep = []
    for _, group in frame.groupby(by, sort=True):
        n = int(round(fraction * len(group)))
        keep.extend(rng.choice(group.index.to_numpy(), size=n, replace=False).tolist())
    return frame.loc[sorted(keep)]


def apply_real_fraction(
    train: pd.DataFrame, real_fraction: float, seed: int, scope: str = "normal"
) -> pd.DataFrame:
    """Subsample the real training rows for a setting's `r`.

    `scope="normal"` (default, what the authors' code did for Table 1) keeps all PNEUMONIA
    rows and `r` of the NORMAL rows; `scope="all"` applies `r` to both classes (the paper's
    wording).
    """
    if scope not in ("normal", "all"):
        raise ValueError(f"real_fraction_scope must be 'normal' or 'all', not {scope!r}")
    if real_fraction >= 1:
        return train
    rng = np.random.default_rng([seed, 1])
    if scope == "all":
        return stratified_sample(train, real_fraction, rng, ["label", "subtype"])
    normal = train[train["label"] == "NORMAL"]
    kept = stratified_sample(normal, real_fraction, rng, ["label"])
    return train.loc[sorted([*kept.index, *train.index[train["label"] != "NORMAL"]])]


def synthetic_count(synthetic_fraction: float, n_generated: int) -> int:
    """How many generated images a setting adds: `round(g * n)` (1200/2400/4000 of 4000)."""
    return int(round(synthetic_fraction * n_generated))


def sample_synthetic(
    generated: pd.DataFrame, synthetic_fraction: float, seed: int
) -> pd.DataFrame:
    """Draw `round(g * n)` generated rows with the run's seed."""
    rng = np.random.default_rng([seed, 2])
    n = synthetic_count(synthetic_fraction, len(generated))
    keep = rng.choice(generated.index.to_numpy(), size=n, replace=False)
    return generated.loc[sorted(keep)]


def cap_per_subset(frame: pd.DataFrame, max_images: int, seed: int) -> pd.DataFrame:
    """Debug/test knob: at most `max_images` rows per subset, stratified by label."""
    if max_images <= 0:
        return frame
    rng = np.random.default_rng([seed, 3])
    parts = []
    for _, group in frame.groupby("subset", sort=False):
        if len(group) <= max_images:
            parts.append(group)
        else:
            parts.append(stratified_sample(group, max_images / len(group), rng, ["label"]))
    return pd.concat(parts).sort_index()

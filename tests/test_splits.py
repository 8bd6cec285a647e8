"""Validation split and setting subsets on the real index (no decoding needed)."""

import pandas as pd
import pytest

from pneumonia_aug.data.dataset import select_rows
from pneumonia_aug.data.kermany import index_kermany
from pneumonia_aug.data.splits import (
    apply_real_fraction,
    sample_synthetic,
    split_train_val,
    synthetic_count,
)
from pneumonia_aug.settings import parse_setting


@pytest.fixture(scope="module")
def real_index():
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "train").is_dir():
        pytest.skip(f"the real Kermany data is not at {SHARED_DATA} (README, Quick start)")
    return index_kermany(SHARED_DATA)[0]


def test_no_patient_and_no_identical_image_in_train_and_val(real_index):
    rows = split_train_val(real_index, split_seed=0)
    train, val = rows[rows["subset"] == "train"], rows[rows["subset"] == "val"]
    assert not set(train["patient_id"]) & set(val["patient_id"])
    assert not set(train["sha256"]) & set(val["sha256"])
    assert (rows.loc[rows["split"] == "test", "subset"] == "test").all()
    assert (rows.loc[rows["subset"] == "test", "split"] == "test").all()


def test_validation_is_a_stratified_tenth_of_train_plus_val(real_index):
    rows = split_train_val(real_index, split_seed=0)
    pool = rows[rows["split"] != "test"]
    val = pool[pool["subset"] == "val"]
    assert 0.08 < len(val) / len(pool) < 0.12
    pool_share = (pool["label"] == "NORMAL").mean()
    assert abs((val["label"] == "NORMAL").mean() - pool_share) < 0.03


def test_split_is_fixed_by_split_seed(real_index):
    a = split_train_val(real_index, 0)["subset"]
    b = split_train_val(real_index, 0)["subset"]
    c = split_train_val(real_index, 1)["subset"]
    assert a.equals(b)
    assert not a.equals(c)


def _counts(rows):
    train = rows[rows["subset"] == "train"]
    return (train["label"] == "NORMAL").sum(), (train["label"] == "PNEUMONIA").sum()


ARGS = {"split_seed": 0, "seed": 0, "real_fraction_scope": "normal"}


def test_r_subsamples_normal_only_by_default(real_index):
    full = select_rows(real_index, parse_setting("Original-1.0-0.0"), **ARGS)
    part = select_rows(real_index, parse_setting("Original-0.3-0.0"), **ARGS)
    (n_full, p_full), (n_part, p_part) = _counts(full), _counts(part)
    assert n_part == round(0.3 * n_full) and p_part == p_full
    # validation and test do not change with r
    for subset in ("val", "test"):
        assert full.loc[full["subset"] == subset, "sha256"].tolist() == \
            part.loc[part["subset"] == subset, "sha256"].tolist()


def test_r_scope_all_subsamples_both_classes_by_subtype(real_index):
    args = {**ARGS, "real_fraction_scope": "all"}
    full = select_rows(real_index, parse_setting("Original-1.0-0.0"), **args)
    part = select_rows(real_index, parse_setting("Original-0.3-0.0"), **args)
    (n_full, p_full), (n_part, p_part) = _counts(full), _counts(part)
    assert abs(n_part - 0.3 * n_full) <= 1 and abs(p_part - 0.3 * p_full) <= 2
    full_train = full[full["subset"] == "train"]
    part_train = part[part["subset"] == "train"]
    assert abs((part_train["subtype"] == "virus").mean()
               - (full_train["subtype"] == "virus").mean()) < 0.02


def test_subsets_are_reproducible_from_the_seed(real_index):
    setting = parse_setting("Original-0.3-0.0")
    a = select_rows(real_index, setting, **ARGS)
    b = select_rows(real_index, setting, **ARGS)
    c = select_rows(real_index, setting, **{**ARGS, "seed": 1})
    assert a["sha256"].tolist() == b["sha256"].tolist()
    assert set(a["sha256"]) != set(c["sha256"])


def test_fixed_real_subset_is_the_same_for_every_seed_and_the_gan(real_index):
    """real_subset=fixed: split_seed draws the kept real images, so Original-0.3 of every seed
    and an r = 0.3 GAN see the same ones; per_seed (the authors' way) draws them by seed."""
    from pneumonia_aug.data.dataset import keep_real
    from pneumonia_aug.data.splits import split_train_val

    setting = parse_setting("Original-0.3-0.0")
    kept = [set(rows.loc[rows["subset"] == "train", "sha256"]) for rows in (
        select_rows(real_index, setting, **{**ARGS, "seed": s}, real_subset="fixed")
        for s in (0, 1))]
    assert kept[0] == kept[1]
    gan_rows = keep_real(split_train_val(real_index, 0), 0.3, 0, "normal")
    assert set(gan_rows.loc[gan_rows["subset"] == "train", "sha256"]) == kept[0]
    per_seed = select_rows(real_index, setting, **{**ARGS, "seed": 1})
    assert set(per_seed.loc[per_seed["subset"] == "train", "sha256"]) != kept[0]


def _generated(n):
    return pd.DataFrame({"path": [f"g{i}.png" for i in range(n)],
                         "relpath": [f"g{i}.png" for i in range(n)],
                         "split": "generated", "label": "NORMAL", "patient_id": "", "subtype": "",
                         "sha256": [f"{i:064x}" for i in range(n)], "origin": "DCGAN"})


@pytest.mark.parametrize("g, expected", [(0.3, 1200), (0.6, 2400), (1.0, 4000)])
def test_synthetic_count_is_round_g_n(g, expected):
    assert synthetic_count(g, 4000) == expected
    assert len(sample_synthetic(_generated(4000), g, seed=0)) == expected
    assert len(sample_synthetic(_generated(7), 0.3, seed=0)) == round(0.3 * 7)


def test_generated_images_enter_train_only(real_index):
    rows = select_rows(real_index, parse_setting("DCGAN-1.0-0.6"), _generated(50), **ARGS)
    generated = rows[rows["origin"] != "real"]
    assert len(generated) == 30 and (generated["subset"] == "train").all()


def test_apply_real_fraction_rejects_unknown_scope(real_index):
    with pytest.raises(ValueError, match="normal' or 'all'"):
        apply_real_fraction(real_index, 0.5, 0, scope="patients")


def test_identical_images_under_different_patients_stay_together():
    index = pd.DataFrame({
        "patient_id": [f"p{i}" for i in range(40)],
        "sha256": [f"h{i}" for i in range(38)] + ["h0", "h1"],  # p38 = p0, p39 = p1 by content
        "label": ["NORMAL", "PNEUMONIA"] * 20, "split": "train",
    })
    for seed in range(5):
        rows = split_train_val(index, seed, val_fraction=0.25)
        subset = dict(zip(rows["patient_id"], rows["subset"], strict=True))
        assert subset["p0"] == subset["p38"] and subset["p1"] == subset["p39"]


def test_a_split_is_kept_in_the_cache_folder_for_the_next_process(tmp_path, monkeypatch):
    """The file decides once written (a new process reads it instead of splitting); a damaged
    one is split again and rewritten; another seed is another file."""
    from pneumonia_aug.data import splits

    monkeypatch.setenv("PNEUMONIA_AUG_CACHE_DIR", str(tmp_path))
    index = pd.DataFrame({"patient_id": [f"p{i}" for i in range(40)],
                          "sha256": [f"h{i}" for i in range(40)],
                          "label": ["NORMAL", "PNEUMONIA"] * 20, "split": "train"})

    def val(seed: int) -> list[str]:
        splits._val_positions.cache_clear()  # as a new process would start
        rows = split_train_val(index, seed, val_fraction=0.25)
        return sorted(rows.loc[rows["subset"] == "val", "patient_id"])

    first = val(0)
    (entry,) = (tmp_path / splits.SPLITS_DIR).iterdir()
    entry.write_text("[0, 1]")
    assert val(0) == ["p0", "p1"]  # read, not split again
    entry.write_text("[0, 1")  # cut short
    assert val(0) == first and entry.read_text() != "[0, 1"
    entry.write_text("[0, 99]")  # a position the pool does not have
    assert val(0) == first
    assert val(1) != first and len(list((tmp_path / splits.SPLITS_DIR).iterdir())) == 2

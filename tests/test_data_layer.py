"""Layout validation, bad inputs, image modes and the decode cache."""

import io
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import xray_like
from pneumonia_aug.data import images as images_module
from pneumonia_aug.data.cache import ImageCache
from pneumonia_aug.data.dataset import load_classifier_data
from pneumonia_aug.data.images import ImageDecodeError, decode_grayscale
from pneumonia_aug.data.kermany import (
    DEFAULT_DATA_DIR,
    default_data_dir,
    index_kermany,
    parse_patient,
    resolve_data_dir,
)
from pneumonia_aug.errors import DataLayoutError, DataMissingError
from pneumonia_aug.settings import parse_setting


def test_patient_ids_follow_the_file_names():
    assert parse_patient("IM-0115-0001.jpeg") == ("IM-0115", "")
    assert parse_patient("NORMAL2-IM-1427-0001.jpeg") == ("NORMAL2-IM-1427", "")
    assert parse_patient("NORMAL2-IM-0173-0001-0002.jpeg") == ("NORMAL2-IM-0173", "")
    assert parse_patient("person1946_bacteria_4874.jpeg") == ("person1946", "bacteria")
    assert parse_patient("person1_virus_6.jpeg") == ("person1", "virus")
    assert parse_patient("odd-name.png") == ("odd-name", "")


def test_index_has_the_contract_columns(tiny_kermany):
    index, skipped = index_kermany(tiny_kermany)
    assert skipped == []
    assert len(index) == 2 * (12 + 2 + 4)
    row = index[index["label"] == "PNEUMONIA"].iloc[0]
    assert row["patient_id"].startswith("person") and row["subtype"] in ("bacteria", "virus")
    assert len(row["sha256"]) == 64 and row["origin"] == "real"


def test_misspelled_class_folder_is_an_error_naming_the_expected_ones(tiny_kermany):
    (tiny_kermany / "train" / "PNEUMONIA").rename(tiny_kermany / "train" / "NEUMONIA")
    with pytest.raises(DataLayoutError) as info:
        index_kermany(tiny_kermany)
    message = str(info.value)
    assert "NEUMONIA" in message and "missing class folder(s) ['PNEUMONIA']" in message
    assert "{NORMAL,PNEUMONIA}" in message


def test_missing_split_is_an_error(tiny_kermany):
    shutil.rmtree(tiny_kermany / "test")
    with pytest.raises(DataLayoutError, match=r"missing split folder\(s\) \['test'\]"):
        index_kermany(tiny_kermany)


def test_misspelled_split_is_an_error(tiny_kermany):
    (tiny_kermany / "val").rename(tiny_kermany / "vall")
    with pytest.raises(DataLayoutError, match=r"unexpected folder\(s\) \['vall'\]"):
        index_kermany(tiny_kermany)


def test_val_is_optional(tiny_kermany):
    shutil.rmtree(tiny_kermany / "val")
    index, _ = index_kermany(tiny_kermany)
    assert set(index["split"]) == {"train", "test"}


def test_missing_data_dir_says_how_to_get_it(tmp_path):
    with pytest.raises(DataMissingError) as info:
        resolve_data_dir(tmp_path / "nowhere")
    assert "pneumonia-aug data download" in str(info.value)
    assert "PNEUMONIA_AUG_DATA_DIR" in str(info.value)


def test_default_data_dir_is_one_rule_and_need_not_exist(tmp_path, monkeypatch):
    monkeypatch.delenv("PNEUMONIA_AUG_DATA_DIR", raising=False)
    assert default_data_dir("") == default_data_dir(None) == Path(DEFAULT_DATA_DIR)
    monkeypatch.setenv("PNEUMONIA_AUG_DATA_DIR", str(tmp_path / "from-env"))
    assert default_data_dir("") == tmp_path / "from-env"  # not created, not checked
    assert default_data_dir(tmp_path / "given") == tmp_path / "given"  # the argument wins
    with pytest.raises(DataMissingError, match="from-env"):
        resolve_data_dir("")  # the same rule, then checked
    (tmp_path / "from-env").mkdir()
    assert resolve_data_dir("") == (tmp_path / "from-env").resolve()


def _add_junk(root):
    folder = root / "train" / "NORMAL"
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "Thumbs.db").write_bytes(b"junk")
    (folder / "IM-9001-0001.jpeg").write_bytes(b"")
    good = io.BytesIO()
    xray_like(99).save(good, "JPEG")
    (folder / "IM-9002-0001.jpeg").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    (folder / "IM-9003-0001.jpeg").write_bytes(b"this is not an image at all")


def test_junk_is_skipped_with_one_warning_and_counted(tiny_kermany, caplog):
    _add_junk(tiny_kermany)
    with caplog.at_level(logging.WARNING):
        data = load_classifier_data(parse_setting("Original-1.0-0.0"), data_dir=str(tiny_kermany),
                                    split_seed=0, seed=0, image_size=32,
                                    real_fraction_scope="normal")
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in data.skipped}
    assert set(reasons) == {".DS_Store", "Thumbs.db", "IM-9001-0001.jpeg",
                            "IM-9002-0001.jpeg", "IM-9003-0001.jpeg"}
    assert reasons["IM-9001-0001.jpeg"] == "empty file"
    assert "unreadable image" in reasons["IM-9002-0001.jpeg"]
    assert "unreadable image" in reasons["IM-9003-0001.jpeg"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 5 file(s)" in warnings[0].getMessage()
    used = set(data.train.manifest["relpath"]) | set(data.val.manifest["relpath"])
    assert not any("IM-900" in p for p in used)


def _encode(img: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "CMYK", "P", "LA"])
def test_colour_modes_become_8bit_grayscale(mode):
    gray = xray_like(3, 40)
    rgb = gray.convert("RGB")
    # An adaptive palette, as real palette files have (convert("P") uses a coarse web palette).
    img = rgb.quantize(colors=256) if mode == "P" else rgb.convert(mode)
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    arr = decode_grayscale(_encode(img, fmt), 40)
    assert arr.dtype == np.uint8 and arr.shape == (40, 40)
    assert np.abs(arr.astype(int) - np.asarray(gray, dtype=int)).mean() < 12


def test_16bit_png_is_scaled_not_clipped():
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    arr = decode_grayscale(_encode(Image.fromarray(ramp), "PNG"), 64)
    assert arr.dtype == np.uint8
    assert arr.min() <= 2 and arr.max() >= 253  # full 16-bit range maps onto 0..255
    assert np.abs(arr.astype(int) - (ramp / 257).astype(int)).mean() < 2


def test_images_are_stretched_to_a_square():
    wide = Image.new("L", (80, 40), 0)
    wide.paste(255, (40, 0, 80, 40))  # right half white
    arr = decode_grayscale(_encode(wide, "PNG"), 32)
    assert arr.shape == (32, 32)
    assert arr[:, :14].max() < 10 and arr[:, 18:].min() > 245  # no crop, no padding


def test_decompression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(images_module, "MAX_PIXELS", 100 * 100)
    with pytest.raises(ImageDecodeError, match="decompression bomb"):
        decode_grayscale(_encode(Image.new("L", (200, 200)), "PNG"), 32)


def test_cache_is_reused_by_a_second_run(tiny_kermany, tmp_path):
    index, _ = index_kermany(tiny_kermany)
    paths, hashes = index["path"].tolist(), index["sha256"].tolist()
    first = ImageCache(tmp_path / "c")
    a, ok, _ = first.load(paths, hashes, 32)
    assert ok.all() and first.misses == len(paths) and first.hits == 0
    # Delete the sources: a second run must be served from the cache alone.
    moved = tmp_path / "moved"
    shutil.move(str(tiny_kermany), moved)
    second = ImageCache(tmp_path / "c")
    b, ok2, skipped = second.load(paths, hashes, 32)
    assert ok2.all() and skipped == [] and second.hits == len(paths) and second.misses == 0
    assert np.array_equal(a, b)
    # Another size is another key.
    third = ImageCache(tmp_path / "c")
    _, ok3, _ = third.load([str(moved / p) for p in index["relpath"]], hashes, 40)
    assert third.misses == len(paths) and ok3.all()

"""`pneumonia-aug bench` at tiny settings on a few real Kermany images (seconds on 2 cores)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from pneumonia_aug.bench import TARGETS, run_bench

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared/data/chest_xray"
VARIANTS = ("classifier bare step", "classifier loop", "paper-style loop", "GAN bare step",
            "GAN loop")
OTHER_DEVICE = "## NVIDIA Example GPU\n\nkept as it was\n"


@pytest.fixture
def tiny_real(tmp_path) -> Path:
    """A Kermany tree of a few real images copied from ../shared/data/chest_xray."""
    if not (SHARED_DATA / "train").is_dir():
        pytest.skip(f"the real Kermany data is not at {SHARED_DATA} (see ../shared/data/SOURCE.md)")
    root = tmp_path / "chest_xray"
    for split, n in (("train", 6), ("test", 1)):
        for label in ("NORMAL", "PNEUMONIA"):
            (root / split / label).mkdir(parents=True)
            for path in sorted((SHARED_DATA / split / label).glob("*.jpeg"))[:n]:
                shutil.copy(path, root / split / label / path.name)
    return root


def _bench(data_dir: Path, output: Path, memory: bool):
    # One thread: on 2 busy cores, two intra-op threads stall each other (seconds a tiny step).
    return run_bench(data_dir=str(data_dir), image_size=32, batch_size=4, steps=2, warmup=1,
                     device="cpu", output=output, rounds=2, threads=1, memory=memory)


def test_bench_measures_every_variant_and_replaces_its_section(tiny_real, tmp_path):
    output = tmp_path / "benchmarks.md"
    output.write_text(f"# old header\n\n{OTHER_DEVICE}")
    threads = torch.get_num_threads()
    result = _bench(tiny_real, output, memory=True)
    assert torch.get_num_threads() == threads  # restored after the run

    assert set(result.variants) == set(VARIANTS)
    for key, variant in result.variants.items():
        assert variant.images_per_s > 0, key
        assert variant.images >= 2 * 4, key  # every variant saw at least steps * batch images
    assert result.variants["paper-style loop"].batch == 16
    assert set(result.ratios) == set(TARGETS)
    v = result.variants
    assert result.ratios["classifier loop / paper-style loop"] == pytest.approx(
        v["classifier loop"].images_per_s / v["paper-style loop"].images_per_s)
    assert result.ratios["GAN loop / GAN bare step"] == pytest.approx(
        v["GAN loop"].images_per_s / v["GAN bare step"].images_per_s)
    assert result.peak_mib > 0

    heading = f"## {result.device}"
    text = output.read_text()
    assert heading in text and result.device.startswith("CPU")
    assert "| Variant | Batch | Images | Seconds | Images/s |" in text
    for key in VARIANTS:
        assert f"| {key} | " in text
    # The 256 px models at the paper's batch sizes, estimated (no GPU here): 4 rows that fit.
    assert [row["batch"] for row in result.memory] == [16, 16, 128, 128]
    assert all(row["estimated_gib"] > 0.5 and "reserved_gib" not in row for row in result.memory)
    assert text.count("| yes (estimate) |") == 4
    assert "pneumonia-aug bench --device cuda --image-size 256 --batch-size 128" in text
    assert OTHER_DEVICE.strip() in text

    again = _bench(tiny_real, output, memory=False)
    text = output.read_text()
    assert text.count(heading) == 1  # replaced, not duplicated
    assert text.count("# Training throughput benchmarks") == 1
    assert again.markdown in text
    assert OTHER_DEVICE.strip() in text  # the other device's section is kept
    assert "not measured in this run (`--no-memory`)" in text


def test_bench_command_options():
    from click.testing import CliRunner

    from pneumonia_aug.bench import bench

    result = CliRunner().invoke(bench, ["--help"])
    assert result.exit_code == 0, result.output
    for option in ("--data-dir", "--image-size", "--batch-size", "--steps", "--warmup",
                   "--device", "--threads", "--output", "--no-memory"):
        assert option in result.output

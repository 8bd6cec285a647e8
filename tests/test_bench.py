"""`pneumonia-aug bench train` at tiny settings on a few real Kermany images (seconds on 2
cores), its ratios and markdown from hand-made timings, and `bench startup`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from pneumonia_aug import measured
from pneumonia_aug.bench.report import (
    ESTIMATE_SLACK,
    FIT_GIB,
    TARGETS,
    TITLE,
    BenchResult,
    Variant,
    ratios,
    render,
    write_section,
)
from pneumonia_aug.bench.run import run_bench
from pneumonia_aug.bench.startup import Command, StartupResult, parse_importtime, run_startup
from pneumonia_aug.bench.startup import render as render_startup
from pneumonia_aug.cli.bench import bench
from pneumonia_aug.errors import PneumoniaAugError

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared/data/chest_xray"
VARIANTS = ("classifier bare step", "classifier loop", "paper-style loop", "GAN bare step",
            "GAN loop")
OTHER_DEVICE = "## NVIDIA Example GPU\n\nkept as it was\n"
CPU_DEVICE = "## CPU: Example (1 thread)\n\nkept as it was\n"


@pytest.fixture
def tiny_real(tmp_path) -> Path:
    """A Kermany tree of a few real images copied from ../shared/data/chest_xray."""
    if not (SHARED_DATA / "train").is_dir():
        pytest.skip(f"the real Kermany data is not at {SHARED_DATA} (README, Quick start)")
    root = tmp_path / "chest_xray"
    for split, n in (("train", 6), ("test", 1)):
        for label in ("NORMAL", "PNEUMONIA"):
            (root / split / label).mkdir(parents=True)
            for path in sorted((SHARED_DATA / split / label).glob("*.jpeg"))[:n]:
                shutil.copy(path, root / split / label / path.name)
    return root


def _bench(data_dir: Path, output: Path, memory: bool, figures: Path | None = None):
    # One thread: on 2 busy cores, two intra-op threads stall each other (seconds a tiny step).
    return run_bench(data_dir=str(data_dir), image_size=32, batch_size=4, steps=2, warmup=1,
                     device="cpu", output=output, rounds=2, threads=1, memory=memory,
                     figures=figures)


def test_bench_measures_every_variant_and_replaces_its_section(tiny_real, tmp_path):
    output, figures = tmp_path / "benchmarks.md", tmp_path / "bench.json"
    output.write_text(f"# old header\n\n{OTHER_DEVICE}")
    figures.write_text(json.dumps([{"device": "NVIDIA Example GPU", "kept": True}]))
    threads = torch.get_num_threads()
    result = _bench(tiny_real, output, memory=True, figures=figures)
    assert torch.get_num_threads() == threads  # restored after the run
    # The data first: the device's record, from which its section is rendered.
    records = json.loads(figures.read_text())
    assert [r["device"] for r in records] == ["NVIDIA Example GPU", result.device]
    record = records[1]
    assert (record["kind"], record["threads"], record["image_size"]) == ("cpu", 1, 32)
    assert record["date"] and record["source"].startswith("pneumonia-aug bench train")
    assert result.markdown == render(record) and render(record) in output.read_text()

    assert set(result.variants) == set(VARIANTS)
    for key, variant in result.variants.items():
        assert variant.images_per_s > 0, key
        assert variant.images >= 2 * 4, key  # every variant saw at least steps * batch images
    assert result.variants["paper-style loop"].batch == 16
    assert set(ratios(result.record())) == set(TARGETS)
    assert result.peak_mib > 0

    heading = f"## {result.device}"
    text = output.read_text()
    assert heading in text and result.device.startswith("CPU")
    # The section shows the numbers measured, and each ratio against its target.
    for v in result.variants.values():
        assert (f"| {v.key} | {v.batch} | {v.images} | {v.seconds:.2f} | "
                f"{v.images_per_s:.1f} |") in text
    for name, value in ratios(record).items():
        assert f"| {name} | {value:.2f} | >= {TARGETS[name]:g} |" in text
    # The 256 px models at the paper's batch sizes, estimated (no GPU here): 4 rows that fit
    # a 24 GB card with the allocator's margin, and scale as expected.
    assert [row["batch"] for row in result.memory] == [16, 16, 128, 128]
    assert not [row for row in result.memory if "reserved_gib" in row]
    for row in result.memory:
        assert 0.5 < row["estimated_gib"] < FIT_GIB / ESTIMATE_SLACK and row["fits_24gb"]
    gib = {row["model"]: row["estimated_gib"] for row in result.memory}
    # bf16 activations halve the activation part, not the state
    assert 1.3 < gib["classifier, fp32 (paper precision)"] / gib[
        "classifier, project step (bf16)"] < 2.1
    assert gib["CGAN D + G step (bf16)"] > gib["DCGAN D + G step (bf16)"]  # the label channel
    assert text.count("| yes (estimate) |") == 4
    assert text.startswith("# old header\n\n") and OTHER_DEVICE.strip() in text

    again = _bench(tiny_real, output, memory=False, figures=figures)
    assert [r["device"] for r in json.loads(figures.read_text())] == [
        "NVIDIA Example GPU", result.device]  # replaced, not added
    text = output.read_text()
    assert text.count(heading) == 1  # replaced, not duplicated
    assert text.count("# old header") == 1 and text.count("## ") == 2
    assert again.markdown in text
    assert OTHER_DEVICE.strip() in text  # the other device's section is kept
    assert "not measured in this run (`--no-memory`)" in text


def _variant(key: str, images: int, seconds: float, batch: int = 128) -> Variant:
    return Variant(key, batch, step=None, seconds=seconds, images=images)


def test_ratios_and_section_from_known_timings(tmp_path):
    variants = {v.key: v for v in (
        _variant("classifier bare step", 1000, 10.0),  # 100 images/s
        _variant("classifier loop", 950, 10.0),  # 95 images/s
        _variant("paper-style loop", 96, 8.0, batch=16),  # 12 images/s
        _variant("GAN bare step", 400, 2.0),  # 200 images/s
        _variant("GAN loop", 340, 2.0),  # 170 images/s
    )}
    settings = {"date": "2026-01-01", "torch": "2.x", "cuda": "12.8", "command": "cmd",
                "image_size": 256, "threads": 1, "images": 1000, "rounds": 4,
                "classifier_pool": 64, "gan_pool": 32, "data": "chest_xray"}
    result = BenchResult("NVIDIA Example", settings, variants, peak_mib=2048.0)
    record = json.loads(json.dumps(result.record()))  # as bench.json keeps it
    assert (record["device"], record["kind"], record["date"], record["source"]) == (
        "NVIDIA Example", "gpu", "2026-01-01", "cmd")
    assert ratios(record) == pytest.approx({"classifier loop / classifier bare step": 0.95,
                                            "classifier loop / paper-style loop": 95 / 12,
                                            "GAN loop / GAN bare step": 0.85})
    assert measured.training_rates(record) == ({128: 95.0}, 170.0)
    body = render(record)
    assert "| paper-style loop | 16 | 96 | 8.00 | 12.0 | n/a |" in body
    assert "| classifier loop / classifier bare step | 0.95 | >= 0.9 | yes |" in body
    assert "| classifier loop / paper-style loop | 7.92 | >= 8 | no |" in body
    assert "| GAN loop / GAN bare step | 0.85 | >= 0.9 | no |" in body
    assert "max_memory_allocated): 2048 MiB" in body
    assert body.rstrip().endswith("not measured in this run (`--no-memory`).")

    # A new page starts with its title; a section is replaced where it stands, a new one
    # appended; the page's introduction is kept as it is.
    output = tmp_path / "benchmarks.md"
    write_section(output, "Startup: Example CPU", "startup body\n")
    write_section(output, "CPU: Example (1 thread)", "cpu body\n")
    assert output.read_text().startswith(f"# {TITLE}\n\n## Startup: Example CPU\n")
    output.write_text(output.read_text().replace(TITLE, f"{TITLE}\n\nIntroduction."))
    write_section(output, "Startup: Example CPU", "faster\n")
    write_section(output, result.device, body)
    assert output.read_text() == (f"# {TITLE}\n\nIntroduction.\n\n"
                                  "## Startup: Example CPU\n\nfaster\n\n"
                                  "## CPU: Example (1 thread)\n\ncpu body\n\n"
                                  f"## {result.device}\n\n{body.rstrip()}\n")


def test_bench_group_and_its_commands():
    runner = CliRunner()
    result = runner.invoke(bench, ["--help"])
    assert result.exit_code == 0, result.output
    assert "train" in result.output and "startup" in result.output
    result = runner.invoke(bench, ["train", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--data-dir", "--image-size", "--batch-size", "--steps", "--warmup",
                   "--device", "--threads", "--output", "--no-memory"):
        assert option in result.output
    startup = runner.invoke(bench, ["startup", "--help"])
    assert startup.exit_code == 0 and "--repeat" in startup.output
    serve = runner.invoke(bench, ["serve", "--help"])
    assert serve.exit_code == 0 and "--clients" in serve.output and "--url" in serve.output
    study = runner.invoke(bench, ["study", "--help"])
    assert study.exit_code == 0 and "--widths" in study.output and "--keep" in study.output


IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       263 |        263 |   _io
import time:      3000 |      20000 | click
import time:        40 |         40 |   org
import time:    900000 |    4200000 |   torch
import time:     10000 |     300000 |     numpy
import time:       100 |     100000 |       numpy.linalg
import time:     50000 |    1500000 | mlflow
import time:     20000 |    4300000 | pneumonia_aug.cli
import time:    100000 |     200000 |   json
not an importtime line
"""


def test_parse_importtime_lists_heavy_modules_and_slowest_packages():
    heavy, slowest = parse_importtime(IMPORTTIME)
    assert heavy == ["torch", "mlflow"]  # pandas and matplotlib were not imported
    # Top-level third-party packages only (no stdlib json, no submodules, not the project),
    # slowest first, at most 3, none under 5 ms (org).
    assert slowest == [("torch", 4.2), ("mlflow", 1.5), ("numpy", 0.3)]


def test_startup_section_reads_each_command_against_the_targets():
    rows = [Command("python -c pass", [], [], seconds=[0.02], baseline=True),
            Command("pneumonia-aug --help", [], [], seconds=[0.1, 0.12, 0.5]),
            Command("pneumonia-aug services status", [], [], seconds=[3.0],
                    heavy=["torch", "pandas"], slowest=[("torch", 2.5)])]
    settings = {"date": "2026-01-01", "python": "3.11.7", "command": "cmd", "repeat": 3,
                "cli": "pneumonia-aug"}
    body = render_startup(StartupResult("Example CPU", settings, rows))
    assert "| `python -c pass` | 0.02 | 1.0 | none | none | baseline |" in body
    assert "| `pneumonia-aug --help` | 0.12 | 6.0 | none | none | yes |" in body
    assert ("| `pneumonia-aug services status` | 3.00 | 150.0 | torch, pandas | torch 2.50 | no |"
            in body)


def test_startup_times_each_command_and_writes_its_section(tmp_path):
    output = tmp_path / "benchmarks.md"
    output.write_text(f"# old header\n\n{CPU_DEVICE}")
    result = run_startup(repeat=1, output=output)
    assert [row.label for row in result.commands] == [
        "python -c pass", "pneumonia-aug --help", "pneumonia-aug services status"]
    for row in result.commands:
        assert len(row.seconds) == 1 and row.seconds[0] > 0, row.label
        assert set(row.heavy) <= {"torch", "mlflow", "pandas", "matplotlib"}
    assert result.commands[0].heavy == []  # the bare interpreter
    text = output.read_text()
    assert text.count(f"## Startup: {result.machine}") == 1
    for row in result.commands:
        assert f"| `{row.label}` | {row.median:.2f} | {result.ratio(row):.1f} |" in text
    assert CPU_DEVICE.strip() in text


def _imported_by(code: str) -> list[str]:
    probe = (f"import json, sys\n{code}\n"
             "print(json.dumps([m for m in ('torch', 'mlflow') if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--help"], ["services", "status", "--dir", "{tmp}"]],
                         ids=["help", "services-status"])
def test_cli_startup_imports_neither_torch_nor_mlflow(args, tmp_path):
    argv = ["pneumonia-aug"] + [a.replace("{tmp}", str(tmp_path)) for a in args]
    code = (f"sys.argv = {argv!r}\nfrom pneumonia_aug.cli import main\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code in (0, None)")
    assert _imported_by(code) == []


def test_bench_group_imports_no_torch():
    assert _imported_by("from pneumonia_aug.cli.bench import bench") == []


def test_study_section_from_known_wall_times(tmp_path):
    """Speed-up is the baseline's wall time over each width's; a table differing from the
    baseline's is reported as not the same; the section lands beside the others."""
    from pneumonia_aug.bench.study import StudyBench, Width, parse_widths
    from pneumonia_aug.bench.study import render as render_study

    result = StudyBench("Study: quick profile, test CPU (2 cores)",
                        [Width(1, 600.0, 17, 0, "a"), Width(2, 400.0, 17, 0, "a"),
                         Width(4, 480.0, 17, 1, "b")])
    text = render_study(result, "pneumonia-aug bench study --widths 1,2,4", "2026-01-01")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "|---" not in line]
    assert rows[1:] == ["| 1 | 1 | 17 | 0 | 600 | 1.00x | baseline |",
                        "| 1 | 2 | 17 | 0 | 400 | 1.50x | yes |",
                        "| 1 | 4 | 17 | 1 | 480 | 1.25x | no |"]
    assert "median" not in text  # one round: nothing to summarize
    # Two rounds: each speed-up against its own round's baseline, then the median and range.
    result.widths += [Width(1, 500.0, 17, 0, "a", 2), Width(2, 400.0, 17, 0, "a", 2),
                      Width(4, 250.0, 17, 0, "a", 2)]
    text = render_study(result, "pneumonia-aug bench study --rounds 2", "2026-01-01")
    assert "| 2 | 2 | 17 | 0 | 400 | 1.25x | yes |" in text
    assert ("Speed-up of --max-parallel 2, per round: 1.50x, 1.25x; median 1.38x, range 1.25x "
            "to 1.50x (2 rounds).") in text
    assert "--max-parallel 4, per round: 1.25x, 2.00x; median 1.62x" in text
    assert parse_widths("1, 2") == [1, 2]
    for bad in ("2", "0,2", "1,x", ""):
        with pytest.raises(PneumoniaAugError, match="two or more widths"):
            parse_widths(bad)

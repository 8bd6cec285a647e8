"""`pneumonia-aug kit`: prepare here, run on the offline GPU machine, import here.

Only click and the config here (`pneumonia-aug --help` stays fast, and `kit run` starts on a
machine whose image lacks MLflow); each command imports its module (`pneumonia_aug/kit/`)
when it runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from pneumonia_aug import logs, measured
from pneumonia_aug.cli.types import UserErrorGroup
from pneumonia_aug.config import DATA_DIR_HELP, DEFAULT_BUDGET_S, PACK_RESERVE_S, PROFILES
from pneumonia_aug.kit.image import IMAGE_PYTHON
from pneumonia_aug.kit.layout import (
    DEFAULT_WORK_DIR,
    KIT_DIR,
    MAX_CARRIED_MIB,
    MAX_OUT_FILE_MIB,
    MAX_OUT_FILES,
    out_files,
)

STUDY_PROFILE = "short"  # the profile sized for one GPU window
DEFAULT_BENCHES = ("256x128", "128x64")  # the documented GPU bench, and the study's size
# The short study's widest wave is its 9 GAN-setting runs; on one GPU, small-batch classifiers
# sharing the card train several times faster together than one after another.
DEFAULT_MAX_PARALLEL = 9


@click.group("kit", cls=UserErrorGroup)
def kit() -> None:
    """An offline GPU machine: carry data + wheels there, run a study and the benches, bring the
    MLflow store back."""
    logs.setup(plain=True)  # run on its own; under `pneumonia-aug` its setup stands


@kit.command("prepare")
@click.option("--kit-dir", default=KIT_DIR, show_default=True, help="the folder to carry")
@click.option("--data-dir", default="", help=f"the {DATA_DIR_HELP} to copy")
@click.option("--image-size", type=int, default=PROFILES[STUDY_PROFILE].image_size,
              show_default=True, help="px of the copy (the study's image size)")
@click.option("--python-version", default=IMAGE_PYTHON, show_default=True,
              help="the GPU machine's Python, for the wheels")
@click.option("--workers", type=int, default=1, show_default=True,
              help="processes re-encoding the images")
@click.option("--max-carried-mib", type=click.FloatRange(min=0, min_open=True),
              default=MAX_CARRIED_MIB, show_default=True,
              help="the most your transfer to the GPU machine carries: the checkout and the "
                   "carried folder together, in MiB")
@click.option("--store", default="", help="a store earlier `kit run`s were imported into "
              "(`kit import --store-dir`): its runs travel, and the next run reuses every "
              "finished pair and trains only the missing seeds")
def prepare_cmd(kit_dir: str, data_dir: str, image_size: int, python_version: str,
                workers: int, max_carried_mib: float, store: str) -> None:
    """Here: build the carried folder (data at the study's size, wheels, kit.json, and with
    --store the earlier runs); fails if the transfer would carry more than --max-carried-mib."""
    from pneumonia_aug.data.kermany import resolve_data_dir
    from pneumonia_aug.kit.prepare import describe, prepare

    manifest = prepare(Path(kit_dir), resolve_data_dir(data_dir), image_size, python_version,
                       workers, max_carried_mib=max_carried_mib,
                       store=Path(store) if store else None)
    click.echo(describe(manifest))


def parse_bench(text: str) -> list[tuple[int, int]]:
    if text.strip().lower() in ("", "none"):
        return []
    match = re.fullmatch(r"\s*(\d+)x(\d+)\s*", text)
    if not match:
        raise click.BadParameter(f"{text!r}: give SIZExBATCH, e.g. 256x128, or none")
    return [(int(match.group(1)), int(match.group(2)))]


@kit.command("run")
@click.option("--kit-dir", default=KIT_DIR, show_default=True, help="the carried folder")
@click.option("--out", required=True, help="the folder the outputs go to (what you bring back)")
@click.option("--budget", type=float, default=DEFAULT_BUDGET_S, show_default=True,
              help="seconds for everything (the time one command may take on the GPU "
                   f"machine); the study is stopped (SIGTERM) {PACK_RESERVE_S} s before the "
                   "end so the store can be packed")
@click.option("--profile", type=click.Choice(tuple(PROFILES)), default=STUDY_PROFILE,
              show_default=True, help="the study's profile")
@click.option("--max-parallel", type=click.IntRange(min=1), default=DEFAULT_MAX_PARALLEL,
              show_default=True, help="the study's stages at once (on one GPU they share it)")
@click.option("--seeds", default="", help="the study's seeds ('' = the profile's)")
@click.option("--settings", default="", help="the study's settings ('' = the profile's)")
@click.option("--bench", "benches", multiple=True, default=DEFAULT_BENCHES, show_default=True,
              help="a bench to run in the time the study leaves, SIZExBATCH (repeat; 'none' "
                   "for no bench)")
@click.option("--bench-steps", type=int, default=0, show_default=True,
              help="timed steps per bench variant (0 = the bench's default)")
@click.option("--bench-timeout", type=float, default=150.0, show_default=True,
              help="seconds each bench may take")
@click.option("--device", default="cuda", show_default=True, help="the benches' device")
@click.option("--work-dir", default="", help="where the store is built, kept as it is ('' = "
              f"{DEFAULT_WORK_DIR} in the temp folder, emptied first: one path for every run "
              "of a study that grows over several)")
@click.option("--max-out-files", type=click.IntRange(min=1), default=MAX_OUT_FILES,
              show_default=True, help="the most files your transfer brings back from --out")
@click.option("--max-out-file-mib", type=click.FloatRange(min=0, min_open=True),
              default=MAX_OUT_FILE_MIB, show_default=True,
              help="the largest file your transfer brings back, in MiB (the store archive "
                   "leaves files behind to fit)")
def run_cmd(kit_dir: str, out: str, budget: float, profile: str, max_parallel: int,
            seeds: str, settings: str, benches: tuple[str, ...], bench_steps: int,
            bench_timeout: float, device: str, work_dir: str, max_out_files: int,
            max_out_file_mib: float) -> None:
    """There (the GPU machine): install the wheels offline, run the study and then the benches
    within the budget, and write the store, table, benches and log to --out."""
    from pneumonia_aug.errors import KitError
    from pneumonia_aug.kit.layout import MANIFEST
    from pneumonia_aug.kit.run import RunOptions, run_kit

    if not (Path(kit_dir) / MANIFEST).is_file():
        raise KitError(f"no {MANIFEST} in {kit_dir}: run `pneumonia-aug kit prepare` here "
                       "first and carry the folder")
    if budget <= PACK_RESERVE_S:
        raise KitError(f"--budget {budget:.0f} leaves no time: give more than "
                       f"{PACK_RESERVE_S} s")
    bench_sizes = [b for text in benches for b in parse_bench(text)]
    written = out_files(bool(bench_sizes))
    if len(written) > max_out_files:
        raise KitError(f"kit run writes up to {len(written)} files ({', '.join(written)}): "
                       f"--max-out-files {max_out_files} is too few")
    opts = RunOptions(kit_dir=Path(kit_dir).resolve(), out=Path(out).resolve(), budget=budget,
                      profile=profile, max_parallel=max_parallel, seeds=seeds,
                      settings=settings, benches=bench_sizes,
                      bench_steps=bench_steps, bench_timeout=bench_timeout, device=device,
                      work_dir=Path(work_dir) if work_dir else None,
                      max_out_files=max_out_files, max_out_file_mib=max_out_file_mib)
    result = run_kit(opts)
    study = result["study"]
    click.echo(f"study: exit code {study['returncode']}"
               + (" (stopped at the time budget)" if study["stopped_at_budget"] else ""))
    if result["error"]:
        raise SystemExit(1)


@kit.command("import")
@click.argument("source", type=click.Path(exists=True, file_okay=False))
@click.option("--store-dir", default="", help="where the MLflow store goes (git-ignored) "
              "[default: outputs/gpu-DATE]")
@click.option("--results-dir", default="", help="where the table, chart and benches go "
              "[default: docs/results/gpu-DATE]")
@click.option("--figures", default=measured.BENCH_PATH, show_default=True,
              help="JSON file whose records the benches replace, written before --benchmarks "
                   "(the figures `study --dry-run` reads; '' = none)")
@click.option("--benchmarks", default="docs/benchmarks.md", show_default=True,
              help="markdown file whose sections the benches replace ('' = none)")
def import_cmd(source: str, store_dir: str, results_dir: str, figures: str,
               benchmarks: str) -> None:
    """Here: unpack what a `kit run` wrote (the files brought back from its --out) into a store that
    `mlflow ui` opens, the table into the docs, and the benches' figures and sections. Into a
    store that earlier runs of the same study were imported into (and carried from, `kit
    prepare --store`): merged, one store."""
    from pneumonia_aug.bench.report import publish
    from pneumonia_aug.kit.unpack import bench_records, import_results

    summary = import_results(Path(source), Path(store_dir) if store_dir else None,
                             Path(results_dir) if results_dir else None)
    summary["benchmark_sections"] = publish(bench_records(Path(source)),
                                            Path(figures) if figures else None,
                                            Path(benchmarks) if benchmarks else None)
    click.echo(json.dumps(summary, indent=2))

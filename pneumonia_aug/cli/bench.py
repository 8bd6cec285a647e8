"""The `bench` command group: `train` (training throughput and memory), `startup` (how fast
the command line starts), `study` (the study one stage at a time vs in parallel), `estimate`
(the dry run's estimate against recorded studies) and `serve` (a served classifier under
concurrent good and bad input).

Only click here: `pneumonia-aug` attaches this group at import, and its `--help` must not load
torch. Each command imports its runner (`pneumonia_aug/bench/`) when it runs.
"""

from __future__ import annotations

import click

from pneumonia_aug import logs, measured
from pneumonia_aug.cli.types import UserErrorGroup
from pneumonia_aug.config import DATA_DIR_HELP
from pneumonia_aug.contract import DEFAULT_CLASSIFIER_URI
from pneumonia_aug.startup import paused_collector

OUTPUT_HELP = "markdown file whose section for this device is replaced ('' = none)"


def _show(markdown: str, heading: str, output: str) -> None:
    """Print a bench's section, and where it was written (`output`, '' = nowhere)."""
    click.echo(f"\n## {heading}\n")
    click.echo(markdown)
    if output:
        click.echo(f"wrote the '{heading}' section of {output}")


@click.group("bench", cls=UserErrorGroup)
def bench() -> None:
    """Benchmarks that write their sections of docs/benchmarks.md."""
    logs.setup(plain=True)  # run on its own; under `pneumonia-aug` its setup stands


@bench.command("train")
@click.option("--data-dir", default="", help=DATA_DIR_HELP)
@click.option("--image-size", type=int, default=None, help="px [default: 256 on CUDA, 64 on CPU]")
@click.option("--batch-size", type=int, default=None, help="[default: 128 on CUDA, 16 on CPU]")
@click.option("--steps", type=int, default=None,
              help="timed steps per variant at --batch-size [default: 50 on CUDA, 20 on CPU]")
@click.option("--warmup", type=int, default=None, help="untimed steps [default: 10 CUDA, 2 CPU]")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("--max-images", type=int, default=1024, show_default=True,
              help="training images decoded for the loops (0 = all)")
@click.option("--rounds", type=int, default=4, show_default=True,
              help="interleaved rounds the timed steps are split into")
@click.option("--threads", type=int, default=0, show_default=True,
              help="CPU intra-op threads (0 = PyTorch's default; 1 on busy 2-core machines)")
@click.option("--memory/--no-memory", default=True, show_default=True,
              help="estimate (and on CUDA measure) the memory of the 256 px models")
@click.option("--output", default="docs/benchmarks.md", show_default=True, help=OUTPUT_HELP)
@click.option("--figures", default=measured.BENCH_PATH, show_default=True,
              help="JSON file whose record for this device is replaced, written before --output "
                   "(the figures `study --dry-run` reads; '' = none)")
def train_cmd(**options) -> None:
    """Images/s of the classifier and GAN loops vs. their bare steps and a paper-style loop."""
    with paused_collector():
        from pneumonia_aug.bench.run import run_bench

    result = run_bench(**options)
    _show(result.markdown, result.device, options["output"])


@bench.command("startup")
@click.option("--repeat", type=int, default=5, show_default=True,
              help="timed runs per command (the median counts)")
@click.option("--output", default="docs/benchmarks.md", show_default=True,
              help="markdown file whose startup section for this machine is replaced ('' = none)")
def startup_cmd(repeat: int, output: str) -> None:
    """Seconds `pneumonia-aug --help` and `services status` take to start, against `python -c
    pass`, and the heavy modules (torch, mlflow, pandas, matplotlib) each imports."""
    from pneumonia_aug.bench.report import STARTUP_HEADING
    from pneumonia_aug.bench.startup import run_startup

    result = run_startup(repeat, output)
    heading = STARTUP_HEADING + result.machine
    _show(result.markdown, heading, output)


@bench.command("study")
@click.option("--profile", default="quick", show_default=True, help="the study's profile")
@click.option("--seeds", default="", help="the study's seeds ('' = the profile's: 0,1,2 for quick)")
@click.option("--settings", default="", help="the study's settings ('' = the profile's)")
@click.option("--widths", default="1,2", show_default=True,
              help="--max-parallel values, the baseline first")
@click.option("--rounds", default=1, show_default=True, type=click.IntRange(1),
              help="run the widths this many times over, alternating (wall times move)")
@click.option("--data-dir", default="", help=DATA_DIR_HELP)
@click.option("--keep/--no-keep", default=False, show_default=True,
              help="keep each width's store, table and log (in a temporary folder)")
@click.option("--output", default="docs/benchmarks.md", show_default=True,
              help="markdown file whose study section for this machine is replaced ('' = none)")
def study_cmd(**options) -> None:
    """Wall time of the whole study one stage at a time against N stages at once, each width
    from an empty store and cache (the quick study, 3 seeds: about 13 minutes one stage at a
    time on 2 cores)."""
    from pneumonia_aug.bench.study import run_study_bench

    result = run_study_bench(**options)
    _show(result.markdown, result.heading, options["output"])


@bench.command("estimate")
@click.option("--output", default="docs/benchmarks.md", show_default=True,
              help="markdown file whose estimate section is replaced ('' = none)")
def estimate_cmd(output: str) -> None:
    """The dry run's estimate against the studies whose times were recorded, stage by stage
    (seconds: it plans, nothing runs)."""
    from pneumonia_aug.bench.estimates import HEADING, run_estimate_bench

    _show(run_estimate_bench(output), HEADING, output)


@bench.command("serve")
@click.option("--model", default=DEFAULT_CLASSIFIER_URI, show_default=True,
              help="registered classifier to serve with `mlflow models serve`")
@click.option("--url", default="", help="bench a server already running there instead "
              "(e.g. http://127.0.0.1:5001); --model is then not served")
@click.option("--requests", type=int, default=500, show_default=True, help="requests in all")
@click.option("--clients", type=int, default=8, show_default=True,
              help="client threads sending at once")
@click.option("--data-dir", default="", help=DATA_DIR_HELP + " (real X-rays for good rows)")
@click.option("--workers", type=int, default=1, show_default=True,
              help="uvicorn workers of the served model")
@click.option("--seed", type=int, default=0, show_default=True, help="the draw of the request mix")
@click.option("--output", default="docs/benchmarks.md", show_default=True,
              help="markdown file whose serving section for this machine is replaced ('' = none)")
def serve_cmd(**options) -> None:
    """p50/p95 latency and unexpected answers of a served classifier: concurrent clients mixing
    good images with bad ones (not base64, not an image, truncated, over 50 Mpx, empty)."""
    from pneumonia_aug.bench.serve import run_serve_bench

    result = run_serve_bench(**options)
    _show(result.markdown, result.heading, options["output"])
    if result.unexpected:
        raise click.exceptions.Exit(1)

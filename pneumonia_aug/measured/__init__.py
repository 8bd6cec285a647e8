"""The project's measured figures, as data: each with the device it was measured on, the date
and its source (the command that measured it, or the results it was read from).

- `bench.json`: what `pneumonia-aug bench train` measured, one record per device (its key,
  `device`, is the section heading of docs/benchmarks.md, whose section is rendered from it).
  The bench writes it (`kit import` writes a GPU machine's records), then the page.
- `recorded.json`: what runs outside the bench showed, written by hand from the results each
  names: training throughput of study stages (`throughput`), the time a stage takes beyond its
  images (`overhead`), and whole studies to hold the dry run's estimate against (`runs`).

The study's estimate reads both, from the package (`importlib.resources`: an installed
package has no docs/). A `date` is the day measured, or `by DAY` where only that is known.
Standard library only.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

BENCH = "bench.json"
RECORDED = "recorded.json"
# Where `bench train` and `kit import` write their records, from the repository root (as
# docs/benchmarks.md): this package's folder in a checkout.
BENCH_PATH = f"{__package__.replace('.', '/')}/{BENCH}"
# The bench's variants the study's estimate reads: the project's training loops.
CLASSIFIER_LOOP, GAN_LOOP = "classifier loop", "GAN loop"


def shipped(name: str):
    """A data file of the package, as JSON."""
    return json.loads(resources.files(__package__).joinpath(name).read_text())


def bench_records(path: Path | None = None) -> list[dict]:
    """The `bench train` records at `path` (none: the package's); [] where there is none."""
    try:
        return json.loads(path.read_text()) if path else shipped(BENCH)
    except FileNotFoundError:
        return []


def put_record(path: Path, record: dict) -> None:
    """Replace the record of `record["device"]` in the records at `path` (or add it last),
    keeping the others in their order."""
    records = bench_records(path)
    keys = [r["device"] for r in records]
    if record["device"] in keys:
        records[keys.index(record["device"])] = record
    else:
        records.append(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=1) + "\n")


def rate(record: dict, variant: str) -> float:
    """Images/s of one variant of a `bench train` record."""
    v = next(v for v in record["variants"] if v["key"] == variant)
    return v["images"] / v["seconds"] if v["seconds"] > 0 else 0.0


def training_rates(record: dict) -> tuple[dict[int, float], float]:
    """(classifier loop images/s by batch, GAN loop images/s) of a `bench train` record."""
    batch = next(v["batch"] for v in record["variants"] if v["key"] == CLASSIFIER_LOOP)
    return {batch: rate(record, CLASSIFIER_LOOP)}, rate(record, GAN_LOOP)

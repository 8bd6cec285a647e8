"""docs/benchmarks.md: the targets its sections are read against, a `bench train` run as a
record (the data its section, and the study's estimate, are made from) and that section
rendered from it; `write_section` replaces one section of a Markdown page (the page's
introduction is the page's own). No torch here: the startup bench and `kit import` write
through it too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pneumonia_aug import measured

TARGETS = {  # ratio -> minimum, on a GPU at 256 px, batch 128
    f"{measured.CLASSIFIER_LOOP} / classifier bare step": 0.9,
    f"{measured.CLASSIFIER_LOOP} / paper-style loop": 8.0,
    f"{measured.GAN_LOOP} / GAN bare step": 0.9,
}
FIT_GIB = 22.0  # a 24 GB card (22.35 GiB), less room for the CUDA context
PROBE_SIZE = 256  # the memory table's models: the paper's working size
# An estimate counts tensors only; the caching allocator's rounding and fragmentation and cuDNN
# workspaces come on top. A rule of thumb, not a measurement: call an estimate a fit when
# 1.5x it is still within FIT_GIB.
ESTIMATE_SLACK = 1.5
STARTUP_TARGET_S = 1.0  # `pneumonia-aug --help` and `services status`, median wall time
STARTUP_FORBIDDEN = ("torch", "mlflow")  # modules those two commands must not import
STARTUP_HEADING = "Startup: "  # + the machine; every other section is a training device's
SERVE_HEADING = "Serving: "  # + the machine (the served model runs on its CPU)
STUDY_HEADING = "Study: "  # the study's fan-out, and the dry run's estimate against runs
ESTIMATE_COMMAND = "pneumonia-aug bench estimate"
TITLE = "Training throughput, startup and serving benchmarks"  # a new page's


@dataclass
class Variant:
    key: str
    batch: int
    step: Callable[[], None] | None
    seconds: float = 0.0
    images: int = 0
    peak_mib: float | None = None

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


@dataclass
class BenchResult:
    device: str  # the section heading, e.g. "NVIDIA H200" or "CPU: ... (2 threads)"
    settings: dict  # date, command, torch, cuda, image_size, threads, ... (`bench.run`)
    variants: dict[str, Variant]
    peak_mib: float
    memory: list[dict] = field(default_factory=list)
    markdown: str = ""

    def record(self) -> dict:
        """What was measured, as the data `bench.json` keeps (`measured`)."""
        s = dict(self.settings)
        return {"device": self.device, "kind": "gpu" if s["cuda"] else "cpu",
                "date": s.pop("date"), "source": s.pop("command"), **s,
                "variants": [{"key": v.key, "batch": v.batch, "images": v.images,
                              "seconds": v.seconds, "peak_mib": v.peak_mib}
                             for v in self.variants.values()],
                "peak_mib": self.peak_mib, "memory": self.memory}


def ratios(record: dict) -> dict[str, float]:
    """Each name in TARGETS is `numerator / denominator`, both variant keys."""
    return {name: measured.rate(record, top) / measured.rate(record, bottom)
            for name in TARGETS for top, bottom in [name.split(" / ")]}


def render(record: dict) -> str:
    """A `bench train` record's section body: settings, the variants, the ratios, the memory."""
    r = record
    lines = [f"Measured {r['date']} with torch {r['torch']}"
             f"{' (CUDA ' + r['cuda'] + ')' if r['cuda'] else ''}: `{r['source']}`",
             f"({r['images']} images per variant, {r['rounds']} interleaved rounds, "
             f"{r['classifier_pool']} classifier / {r['gan_pool']} NORMAL training images "
             f"from `{r['data']}`).", "",
             "| Variant | Batch | Images | Seconds | Images/s | Peak memory added (MiB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for v in r["variants"]:
        peak = "n/a" if v["peak_mib"] is None else f"{v['peak_mib']:.0f}"
        lines.append(f"| {v['key']} | {v['batch']} | {v['images']} | {v['seconds']:.2f} | "
                     f"{measured.rate(r, v['key']):.1f} | {peak} |")
    lines += ["", "| Ratio | Value | Target (GPU, 256 px, batch 128) | Met here |",
              "|---|---:|---:|---|"]
    for name, value in ratios(r).items():
        met = "yes" if value >= TARGETS[name] else "no"
        lines.append(f"| {name} | {value:.2f} | >= {TARGETS[name]:g} | {met} |")
    kind = "max_memory_allocated" if r["cuda"] else "getrusage maxrss"
    lines += ["", f"Peak memory of the run ({kind}): {r['peak_mib']:.0f} MiB.", ""]
    lines += render_memory(r["memory"])
    return "\n".join(lines) + "\n"


def render_memory(rows: list[dict]) -> list[str]:
    """The memory table of the 256 px models (`bench/memory_probe.py` measures the rows)."""
    if not rows:
        return ["Memory of the 256 px models: not measured in this run (`--no-memory`)."]
    measured_here = any("reserved_gib" in row for row in rows)
    lines = [f"Memory, {PROBE_SIZE} px at the paper's batch sizes (estimated: tensors alive at "
             "the peak, counted on fake tensors; measured: PyTorch's CUDA allocator):", "",
             "| Model step | Batch | Estimated peak (GiB) | Measured allocated (GiB) | "
             "Measured reserved (GiB) | Fits 24 GB |", "|---|---:|---:|---:|---:|---|"]
    for row in rows:
        got = [f"{row[k]:.2f}" if k in row else "n/a" for k in ("allocated_gib", "reserved_gib")]
        fits = "yes" if row["fits_24gb"] else "no"
        lines.append(f"| {row['model']} | {row['batch']} | {row['estimated_gib']:.2f} | "
                     f"{got[0]} | {got[1]} | {fits}{'' if measured_here else ' (estimate)'} |")
    if not measured_here:
        lines += ["", f"No GPU in this run: 'Fits' reads the estimate with a {ESTIMATE_SLACK:g}x "
                  "margin for the allocator and cuDNN; a CUDA run of the bench measures it."]
    return lines


def publish(records: list[dict], figures: Path | None, page: Path | None) -> list[str]:
    """The data first: `records` into the records file `figures` (`measured.put_record`), then
    each one's section, rendered from it, into the Markdown `page` (either None: skip it);
    their headings."""
    for record in records:
        if figures:
            measured.put_record(figures, record)
        if page:
            write_section(page, record["device"], render(record))
    return [record["device"] for record in records]


def write_section(path: Path, heading: str, body: str) -> None:
    """Replace the `## heading` section of the Markdown page `path` by `body`, or append it;
    everything else stays as it is (a page not there yet starts with its title)."""
    intro, sections, current = "", {}, None
    text = path.read_text() if path.exists() else f"# {TITLE}\n"
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = ""
        elif current is None:
            intro += line
        else:
            sections[current] += line
    sections[heading] = "\n" + body
    parts = [intro.rstrip() + "\n"] + [f"## {h}\n{b.rstrip()}\n" for h, b in sections.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))

"""docs/benchmarks.md: the page's header, the targets its sections are read against, a
`bench train` run as a record (the data its section, and the study's estimate, are made from)
and that section rendered from it; `write_section` replaces one section of a Markdown page.
No torch here: the startup bench and `kit import` write through it too."""

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
GPU_COMMAND = "pneumonia-aug bench train --device cuda --image-size 256 --batch-size 128"
CPU_COMMAND = ("pneumonia-aug bench train --device cpu --image-size 64 --batch-size 16"
               " --threads 1 --data-dir data/chest_xray")
STARTUP_COMMAND = "pneumonia-aug bench startup --repeat 5"
SERVE_COMMAND = "pneumonia-aug bench serve --model models:/pneumonia-chexnet/VERSION"
ESTIMATE_COMMAND = "pneumonia-aug bench estimate"
HEADER = f"""# Training throughput, startup and serving benchmarks

Written by `pneumonia-aug bench train`, `bench startup`, `bench serve`, `bench study` and
`bench estimate` (`pneumonia_aug/bench/`). Each run replaces the section of its own device
(startup: its own machine) and keeps the others. Run them from the repository root:

- GPU: `{GPU_COMMAND}`
- CPU: `{CPU_COMMAND}`
- Startup: `{STARTUP_COMMAND}`
- Serving: `{SERVE_COMMAND}`
- An air-gapped GPU machine (PyTorch, no MLflow, no network): `pneumonia-aug kit prepare`
  here, `pneumonia-aug kit run` there with `.gpu/` carried, `pneumonia-aug kit import` here
  (docs/offline-gpu.md). Its sections are headed by the device, the image size and the batch.
- The dry run's estimate against the studies whose times were recorded: `{ESTIMATE_COMMAND}`.

`bench train` (and `kit import`, for a GPU machine's) first writes what it measured as data:
its device's record in `{measured.BENCH_PATH}` (device, date, the command, each
variant's images and seconds), which the study's dry run reads its figures from (the package
ships it). The device's section below is rendered from that record.

Five variants run on the same device, each over the same number of images (rounded up to whole
batches of 16 for the paper-style loop) after a warm-up, in interleaved rounds:
**classifier bare step** (CheXNet forward + backward + Adam on random tensors already on the
device, bf16 + channels-last on CUDA: the ceiling), **classifier loop** (the project's step:
cached uint8 images on the device, indexed, cropped + flipped on the device, as in
`training/classifier.py`), **paper-style loop** (PIL decode of the JPEG files every step,
torchvision RandomResizedCrop + flip + ToTensor + Normalize per image, no DataLoader workers,
fp32, batch 16, `loss.item()` each step), **GAN bare step** (the authors' DCGAN, D + G step on
random tensors) and **GAN loop** (`training/gan.py` `gan_train_step` on cached real NORMAL
images).

Targets, on a GPU at 256 px and batch 128: classifier loop >= 90% of its bare step and >= 8x the
paper-style loop; GAN loop >= 90% of its bare step. The memory table covers the 256 px
models at the paper's batch sizes (classifier 16, GANs 128), which must fit a 24 GB card: every
run estimates their peaks without a GPU (fake tensors, `bench/memory.py`), and a CUDA
run also measures them, fitting when PyTorch reserves at most {FIT_GIB:.0f} GiB. Both count the
model step only: the project also keeps the decoded training images on the GPU (5216 x 256 x 256
uint8, about 0.33 GiB for the whole Kermany training split).

Caveat: the CPU figures were measured on a 224 px copy of the dataset. Decoding a full-size
radiograph costs far more (about 10 ms a core), so against the original files the paper-style
loop is slower than measured here and the loop / paper-style ratio is an underestimate.
On a CPU the model step dominates every variant (a 224 px JPEG decodes in about 1 ms), so the
ratios there sit near 1: the targets are for GPUs. CPU figures come from shared 2-core
machines: compare ratios within one run, not across runs (they vary by ~10%). There, use
`--threads 1`: with two intra-op threads on two busy cores the threads stall each other and a
step runs about 5x slower and far more erratically.

Startup: the wall time of `pneumonia-aug --help` and `pneumonia-aug services status` (on an
empty `--dir`), each a fresh process run N times in interleaved rounds (the median counts),
against `python -c pass` on the same interpreter. Each also runs once under
`python -X importtime`, which lists the heavy modules it loaded and its slowest imports.
Target: under {STARTUP_TARGET_S:g} s, importing neither {' nor '.join(STARTUP_FORBIDDEN)}.

Serving: `mlflow models serve` of a registered classifier on loopback, hit by concurrent clients
with a fixed mix of good requests and bad ones (rows that are not base64, not an image, cut
short or over the 50 Mpx limit, an empty frame, a missing column; `bench/serve_requests.py`).
Every answer is checked against the serving contract (docs/serving.md, "predict, serving and the
registry"): target 0 unexpected answers. Latency is per request, to the last byte. The served
model runs on the CPU; its image size sets the cost of a good row, its weights do not (any
version of that size will do). The load average in a section says how busy the machine was.
"""


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
    """Replace (or append) the `## heading` section of `path`, keeping the other devices'."""
    sections: dict[str, str] = {}
    current = None
    text = path.read_text() if path.exists() else ""
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = ""
        elif current is not None:
            sections[current] += line
    sections[heading] = "\n" + body
    header = HEADER
    if all(h.startswith(("CPU", STARTUP_HEADING, SERVE_HEADING, STUDY_HEADING))
           for h in sections):
        header += f"\nNo GPU section yet: run `{GPU_COMMAND}` on one.\n"
    parts = [header] + [f"## {h}\n{b.rstrip()}\n" for h, b in sections.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))

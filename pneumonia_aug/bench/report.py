"""docs/benchmarks.md: one section per device (and one per machine for startup), rewritten by
each run there; the targets the sections are read against; and the training figures the study's
estimate reads (`study/throughput.json`, shipped in the package), written with the page. No
torch here: the startup bench writes through it too."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pneumonia_aug.study import estimate

# In a checkout: the page, and the figures `study --dry-run` reads from inside the package
# (an installed package has no docs/). Writing the page writes the figures from it.
CHECKOUT_BENCHMARKS = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
FIGURES = Path(estimate.__file__).with_name(estimate.FIGURES)

TARGETS = {  # ratio -> minimum, on a GPU at 256 px, batch 128
    "classifier loop / classifier bare step": 0.9,
    "classifier loop / paper-style loop": 8.0,
    "GAN loop / GAN bare step": 0.9,
}
FIT_GIB = 22.0  # a 24 GB card (22.35 GiB), less room for the CUDA context
STARTUP_TARGET_S = 1.0  # `pneumonia-aug --help` and `services status`, median wall time
STARTUP_FORBIDDEN = ("torch", "mlflow")  # modules those two commands must not import
STARTUP_HEADING = "Startup: "  # + the machine; every other section is a training device's
SERVE_HEADING = "Serving: "  # + the machine (the served model runs on its CPU)
STUDY_HEADING = "Study: "  # the study's fan-out (sequential vs parallel wall times), by hand
GPU_COMMAND = "pneumonia-aug bench train --device cuda --image-size 256 --batch-size 128"
CPU_COMMAND = ("pneumonia-aug bench train --device cpu --image-size 64 --batch-size 16"
               " --threads 1 --data-dir data/chest_xray")
STARTUP_COMMAND = "pneumonia-aug bench startup --repeat 5"
SERVE_COMMAND = "pneumonia-aug bench serve --model models:/pneumonia-chexnet/VERSION"
HEADER = f"""# Training throughput, startup and serving benchmarks

Written by `pneumonia-aug bench train`, `bench startup` and `bench serve`
(`pneumonia_aug/bench/`). Each run replaces the section of its own device (startup: its own
machine) and keeps the others. Run them from the repository root:

- GPU: `{GPU_COMMAND}`
- CPU: `{CPU_COMMAND}`
- Startup: `{STARTUP_COMMAND}`
- Serving: `{SERVE_COMMAND}`
- An air-gapped GPU machine (PyTorch, no MLflow, no network): `pneumonia-aug kit prepare`
  here, `pneumonia-aug kit run` there with `.gpu/` carried, `pneumonia-aug kit import` here
  (docs/offline-gpu.md). Its sections are headed by the device, the image size and the batch.

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
    step: Callable[[], None]
    seconds: float = 0.0
    images: int = 0
    peak_mib: float | None = None

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


@dataclass
class BenchResult:
    device: str  # the section heading, e.g. "NVIDIA H200" or "CPU: ... (2 threads)"
    settings: dict
    variants: dict[str, Variant]
    ratios: dict[str, float]
    peak_mib: float
    memory: list[dict] = field(default_factory=list)
    markdown: str = ""


def compute_ratios(v: dict[str, Variant]) -> dict[str, float]:
    """Each name in TARGETS is `numerator / denominator`, both variant keys."""
    rate = {k: x.images_per_s for k, x in v.items()}
    return {name: rate[top] / rate[bottom]
            for name in TARGETS for top, bottom in [name.split(" / ")]}


def render(result: BenchResult, memory_lines: list[str]) -> str:
    """The device's section body: settings, the variants, the ratios, then `memory_lines`
    (`memory_probe.render`)."""
    s = result.settings
    lines = [f"Measured {s['date']} with torch {s['torch']}"
             f"{' (CUDA ' + s['cuda'] + ')' if s['cuda'] else ''}: `{s['command']}`",
             f"({s['images']} images per variant, {s['rounds']} interleaved rounds, "
             f"{s['classifier_pool']} classifier / {s['gan_pool']} NORMAL training images "
             f"from `{s['data']}`).", "",
             "| Variant | Batch | Images | Seconds | Images/s | Peak memory added (MiB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for v in result.variants.values():
        peak = "n/a" if v.peak_mib is None else f"{v.peak_mib:.0f}"
        lines.append(f"| {v.key} | {v.batch} | {v.images} | {v.seconds:.2f} | "
                     f"{v.images_per_s:.1f} | {peak} |")
    lines += ["", "| Ratio | Value | Target (GPU, 256 px, batch 128) | Met here |",
              "|---|---:|---:|---|"]
    for name, value in result.ratios.items():
        met = "yes" if value >= TARGETS[name] else "no"
        lines.append(f"| {name} | {value:.2f} | >= {TARGETS[name]:g} | {met} |")
    kind = "max_memory_allocated" if result.settings["cuda"] else "getrusage maxrss"
    lines += ["", f"Peak memory of the run ({kind}): {result.peak_mib:.0f} MiB.", ""]
    lines += memory_lines
    return "\n".join(lines) + "\n"


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
    if path.resolve() == CHECKOUT_BENCHMARKS:
        write_figures(path.read_text(), FIGURES)


# A training row of `render`'s table: the variant, its batch, ..., its images/s.
_ROW = re.compile(r"^\| (classifier loop|GAN loop) \| (\d+) \| \d+ \| [\d.]+ \| ([\d.]+) \|",
                  re.M)


def throughput_figures(text: str) -> list[dict]:
    """The training figures of each device section of a benchmarks page, in its order: heading,
    image size, CPU threads, classifier images/s by batch (keys are strings, as in JSON), and
    the GAN loop's images/s."""
    figures = []
    for section in text.split("\n## ")[1:]:
        heading, _, body = section.partition("\n")
        size = re.search(r"--image-size (\d+)", body)
        rows = _ROW.findall(body)
        classifier = {b: float(r) for name, b, r in rows if name == "classifier loop"}
        gan = [float(r) for name, _, r in rows if name == "GAN loop"]
        if size and classifier and gan:
            threads = re.search(r"\((\d+) threads?\)", heading)
            figures.append({"heading": heading.strip(), "image_size": int(size.group(1)),
                            "threads": int(threads.group(1)) if threads else 1,
                            "classifier": classifier, "gan": gan[0]})
    return figures


def write_figures(text: str, path: Path) -> None:
    """`throughput_figures(text)` as the JSON file the study's estimate reads."""
    path.write_text(json.dumps(throughput_figures(text), indent=2) + "\n")

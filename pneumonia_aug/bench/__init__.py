"""`pneumonia-aug bench`: training throughput of the project's loops against their bare steps
and a paper-style loop, and the memory of the 256 px models, on one device in one run.

`variants.py` builds the timed steps, `memory_probe.py` estimates (and on CUDA measures) the
memory, `report.py` writes docs/benchmarks.md, `run.py` times and holds the command.
"""

from pneumonia_aug.bench.report import TARGETS
from pneumonia_aug.bench.run import bench, run_bench

__all__ = ["TARGETS", "bench", "run_bench"]

"""What `pneumonia-aug bench` runs: benchmarks that write their sections of docs/benchmarks.md.

`bench train`: training throughput of the project's loops against their bare steps and a
paper-style loop, and the memory of the 256 px models, on one device in one run (`run.py`
times, `variants.py` builds the timed steps, `memory_probe.py` and `memory.py` estimate and on
CUDA measure the memory). `bench startup`: how fast the command line starts and which heavy
modules it imports (`startup.py`). `report.py` holds the targets and writes the markdown;
The commands are `pneumonia_aug/cli/bench.py` (no torch there: `pneumonia-aug --help` stays
fast); each imports its runner here when it runs.
"""

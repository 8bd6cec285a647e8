"""What `pneumonia-aug bench` runs: benchmarks that write their sections of docs/benchmarks.md.

`bench train`: training throughput of the project's loops against their bare steps and a
paper-style loop, and the memory of the 256 px models, on one device in one run (`run.py`
times, `variants.py` builds the timed steps, `memory_probe.py` and `memory.py` estimate and on
CUDA measure the memory); what it measured is written as data first (`measured`), its section
rendered from it. `bench startup`: how fast the command line starts and which heavy modules it
imports (`startup.py`). `bench study`: the study one stage at a time against N at once
(`study.py`). `bench estimate`: the dry run's estimate against recorded studies
(`estimates.py`). `bench serve`: a served classifier under good and bad requests
(`serve.py`). `report.py` holds the targets, renders a `bench train` record and replaces a
page's sections. The commands are `pneumonia_aug/cli/bench.py` (no torch there:
`pneumonia-aug --help` stays fast); each imports its runner here when it runs.
"""

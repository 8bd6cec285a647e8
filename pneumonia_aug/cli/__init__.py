"""`pneumonia-aug`: the command line; each MLproject entry point calls one command here.

The one layer that imports click: `commands.py` (the main group and the run commands),
`options.py` (options built from the config dataclasses), `types.py` (the group that turns
user errors into one line, the parameter types), `data.py`, `services.py`, `kit.py` and
`bench.py` (the command groups). Nothing heavy (torch, MLflow) is imported until a command
runs.
"""

from pneumonia_aug.cli.commands import main

__all__ = ["main"]

"""Logging, set up in one place: every command group and every stage process calls `setup`."""

from __future__ import annotations

import logging

RUN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PLAIN_FORMAT = "%(message)s"  # a command group that only reports what it does (services, kit)
# Libraries whose INFO lines say nothing a user needs.
NOISY = ("urllib3", "botocore", "matplotlib", "PIL", "alembic")


def setup(verbose: bool = False, plain: bool = False) -> None:
    """The root logger on stderr at INFO (DEBUG when `verbose`), each line timed and named
    (`plain`: the message alone); the noisy libraries at WARNING. Once set up (by the command
    this one runs under, or a process that set it up before), the root logger is left as it is."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format=PLAIN_FORMAT if plain else RUN_FORMAT)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)

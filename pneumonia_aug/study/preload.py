"""Imported by the forkserver that stage processes fork from (the last of `tasks.PRELOAD`):
work that every stage process would otherwise redo, done once there and inherited.

What it warms: the distributions maps that logging a model consults (`packaging.warm_up`),
seconds per stage process (docs/study.md). The forkserver skips a preload module
that fails to import, but any other exception would end it, and every stage with it: a
failure here is logged and the stages build the maps themselves.
"""

import logging

try:
    from pneumonia_aug.serving.packaging import warm_up

    warm_up()
except Exception as exc:  # noqa: BLE001 - never take the forkserver down with it
    logging.getLogger(__name__).warning("stage processes start cold: %s", exc)

"""Imported by the forkserver that stage processes fork from (`tasks.PRELOAD`): work that
every stage process would otherwise redo, done once there and inherited.

It imports torch, torchvision, MLflow, MLflow's database stores (imported on a process's first
call to a sqlite:// or postgresql:// store) and the stages, and warms the distributions maps
that logging a model consults (`packaging.warm_up`), with the garbage collector paused
(`startup.paused_collector`): seconds per stage process (docs/study.md). An exception here would end
the forkserver, and every stage with it: a failure is logged instead, and each stage process
then imports and builds what it needs itself.
"""

import importlib
import logging

from pneumonia_aug.startup import paused_collector

MODULES = ("torch", "torchvision", "mlflow", "mlflow.store.tracking.sqlalchemy_store",
           "mlflow.store.model_registry.sqlalchemy_store",
           "pneumonia_aug.stages.train_classifier", "pneumonia_aug.stages.train_gan",
           "pneumonia_aug.stages.generate")

try:
    with paused_collector():
        for name in MODULES:
            importlib.import_module(name)
        from pneumonia_aug.serving.packaging import warm_up

        warm_up()  # maps that live as long as the process: frozen with the modules
except Exception as exc:  # noqa: BLE001 - never take the forkserver down with it
    logging.getLogger(__name__).warning("stage processes start cold: %s", exc)

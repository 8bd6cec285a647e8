"""Runs that start together and log the same data subset (a study's seeds, each with the same
test set) all get it as a dataset input. Against a real
sqlite tracking store, eight runs logging at the same moment, ten times over: before runs
retried the store's unique-key failure, 7 of 10 such rounds lost a run's input."""

from __future__ import annotations

import threading

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from pneumonia_aug import tracking

RUNS, ROUNDS = 8, 10
SUBSET = pd.DataFrame({"relpath": [f"test/NORMAL/{i}.jpeg" for i in range(50)],
                       "sha256": [f"{i:02x}" for i in range(50)], "path": "/x"})


def test_runs_logging_one_subset_together_each_get_it(tracking_uri):
    experiment = mlflow.create_experiment("together")
    errors: list[str] = []
    run_ids: dict[int, list[str]] = {r: [] for r in range(ROUNDS)}
    for r in range(ROUNDS):
        barrier = threading.Barrier(RUNS)

        def log(name=f"subset{r}", r=r, barrier=barrier):
            with mlflow.start_run(experiment_id=experiment) as run:
                run_ids[r].append(run.info.run_id)
                barrier.wait()
                try:
                    tracking.log_manifest(SUBSET, name, source="/x")
                except Exception as exc:  # noqa: BLE001 - collected, asserted below
                    errors.append(str(exc)[:200])

        threads = [threading.Thread(target=log) for _ in range(RUNS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    client = MlflowClient()
    digest = tracking.manifest_digest(SUBSET)
    for r, ids in run_ids.items():
        for run_id in ids:
            inputs = client.get_run(run_id).inputs.dataset_inputs
            assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [(f"subset{r}", digest)]

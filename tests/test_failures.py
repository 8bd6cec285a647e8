"""Errors before runs, and failures inside them: what the user sees and what the run keeps.

- Bad input (a data folder, a model URI, an experiment) is a one-line `error:` with exit code
  2 before any run opens: no run is left behind.
- A run that fails inside records why: status FAILED (KILLED for Ctrl-C), the tag
  `failure_reason` and the error in its description, with everything logged before kept.
- A non-finite loss in either training stage ends that way too, with a one-line `error:`.
"""

from __future__ import annotations

import _thread
import random
import signal
import sqlite3
import threading

import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from pneumonia_aug import tracking
from pneumonia_aug.cli import main
from pneumonia_aug.stages.interrupts import sigterm_as_interrupt


def _cli(*args: str):
    return CliRunner().invoke(main, list(args))


def _runs(experiment: str = "pneumonia-aug") -> list:
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


def _one_line_error(result, *expected: str) -> str:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def test_user_errors_leave_no_run_behind(tiny_kermany, tracking_uri, tmp_path):
    missing = str(tmp_path / "nowhere")
    _one_line_error(_cli("study", "--profile", "tiny", "--data-dir", missing),
                    "no Kermany chest X-ray data")
    _one_line_error(_cli("generate", "--model-uri", "models:/pneumonia-dcgan-generator/7"),
                    "no registered model at models:/pneumonia-dcgan-generator/7")
    _one_line_error(_cli("compare", "--experiment-name", "nothing-here"),
                    "no experiment named 'nothing-here'")
    _one_line_error(_cli("train-gan", "--data-dir", missing), "no Kermany chest X-ray data")
    assert _runs() == [] and _runs("nothing-here") == []


def test_an_exception_inside_a_run_is_recorded_on_it(tracking_uri):
    with pytest.raises(RuntimeError), tracking.start_run("failures", run_name="boom",
                                                         description="What this run does."):
        tracking.log_metrics({"n_train": 3})
        run_id = tracking.active_run_id()
        raise RuntimeError("disk full\n(second line of detail)")
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"] == "RuntimeError: disk full"
    assert run.data.tags["mlflow.note.content"] == \
        "What this run does.\n\n**Failed:** RuntimeError: disk full"
    assert run.data.metrics["n_train"] == 3  # logged before the failure: kept

    with pytest.raises(KeyboardInterrupt), tracking.start_run("failures", run_name="stop"):
        run_id = tracking.active_run_id()
        raise KeyboardInterrupt("received signal SIGTERM")
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["failure_reason"] == "KeyboardInterrupt: received signal SIGTERM"


def test_a_stop_during_store_reads_leaves_the_store_writable(tracking_uri):
    """SIGTERM at random instants of a stage's reads from a SQLite store: each time, while the
    interrupt is being handled (as when the run is being ended KILLED), another connection's
    write goes through at once. Raised inside SQLAlchemy, about one interrupt in ten left a
    read holding the store's lock, and every write, the run's own KILLED included, waited
    out MLflow's 20 s lock timeout and failed."""
    client = MlflowClient()
    run_id = client.create_run(client.create_experiment("reads")).info.run_id
    database = tracking_uri.removeprefix("sqlite:///")
    rng = random.Random(0)
    for trial in range(60):
        # As the signal arrives: the handler runs in the main thread at its next instruction.
        stop = threading.Timer(rng.uniform(0.001, 0.03), _thread.interrupt_main,
                               (signal.SIGTERM,))
        with sigterm_as_interrupt():
            try:
                # Inside the try: on a loaded machine the signal can come before start() returns.
                stop.start()
                while True:
                    client.get_run(run_id)
            except KeyboardInterrupt:
                other = sqlite3.connect(database, timeout=1.0)
                try:
                    other.execute("UPDATE runs SET name = ? WHERE run_uuid = ?",
                                  (f"trial {trial}", run_id))
                    other.commit()
                except sqlite3.OperationalError as exc:
                    pytest.fail(f"interrupt {trial}: the store stayed locked ({exc})")
                finally:
                    other.close()


def _diverged_run(result, hint: str):
    _one_line_error(result, "training diverged", hint)
    (run,) = _runs()
    tags = run.data.tags
    assert run.info.status == "FAILED"
    assert "training diverged" in tags["failure_reason"]
    assert "**Failed:**" in tags["mlflow.note.content"]
    assert tags["mlflow.note.content"].index("**Failed:**") > 0  # after what the run is
    assert tags["dataset_digest"] and run.data.params  # logged before the failure: kept
    return run


@pytest.mark.parametrize("stage", ["train-classifier", "train-gan"])
def test_a_non_finite_loss_fails_the_run_with_one_line(stage, tiny_kermany, tracking_uri):
    # Adam's first step moves every weight by about lr: at 1e30 the next batch's loss is
    # inf or nan, in the first epoch.
    if stage == "train-classifier":
        args = ["--lr", "1e30", "--batch-size", "8", "--epochs", "2"]
        hint = "Lower lr"
    else:
        args = ["--lr-d", "1e30", "--lr-g", "1e30", "--batch-size", "4", "--epochs", "2",
                "--sample-every", "0", "--feature-model-uri", ""]
        hint = "Lower lr_d/lr_g"
    result = _cli(stage, "--data-dir", str(tiny_kermany), "--image-size", "32", "--device",
                  "cpu", *args)
    run = _diverged_run(result, hint)
    # counts tagged before the failure; no file skipped, so no such count
    assert int(run.data.tags["n_train"]) > 0 and "n_skipped_files" not in run.data.tags
    assert not MlflowClient().search_registered_models()  # no model from a diverged run

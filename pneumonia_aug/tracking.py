"""The one module that talks to MLflow: runs, params, metrics, inputs, artifacts, registry.

Names that are the contract between stages (registered models, artifact paths, tags) are
defined here once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

from pneumonia_aug.errors import TrackingError

log = logging.getLogger(__name__)

# Registered model names (the contract with downstream users; README documents them).
CLASSIFIER_MODEL = "pneumonia-chexnet"
# Artifact paths inside a classifier run.
MANIFESTS_DIR = "manifests"
PLOTS_DIR = "plots"
PREDICTIONS_ARTIFACT = "predictions/test_predictions.csv"
CONFIG_ARTIFACT = "config.json"
SKIPPED_ARTIFACT = "data/skipped_files.json"
PACKAGE_DIR = Path(__file__).resolve().parent


def git_commit() -> str:
    """The commit of the code that runs (`git rev-parse HEAD`), or "unknown" outside git."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PACKAGE_DIR, capture_output=True,
                             text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@contextlib.contextmanager
def start_run(experiment_name: str, run_name: str | None = None, tags: dict | None = None,
              parent_run_id: str = "") -> Iterator[mlflow.ActiveRun]:
    """Start a run (or, under `mlflow run`, continue the run it made).

    Inside another active run the new run is nested under it; `parent_run_id` nests it under
    that run instead. An exception marks the run FAILED and keeps everything logged so far;
    Ctrl-C marks it KILLED.
    """
    nested = mlflow.active_run() is not None
    launched_by_project = bool(os.environ.get("MLFLOW_RUN_ID")) and not nested
    if not launched_by_project:
        mlflow.set_experiment(experiment_name)
    parent = None if launched_by_project else (parent_run_id or None)
    with mlflow.start_run(run_name=run_name, nested=nested, parent_run_id=parent) as run:
        if launched_by_project:
            actual = mlflow.get_experiment(run.info.experiment_id).name
            if actual != experiment_name:
                log.warning("this run lives in experiment %r (chosen by `mlflow run`), not %r; "
                            "pass `--experiment-name %s` to `mlflow run` to put it there",
                            actual, experiment_name, experiment_name)
            if run_name:
                mlflow.set_tag("mlflow.runName", run_name)
            if parent_run_id:
                mlflow.set_tag("mlflow.parentRunId", parent_run_id)
        if tags:
            set_tags(tags)
        try:
            yield run
        except KeyboardInterrupt:
            mlflow.end_run("KILLED")
            raise


def active_run_id() -> str:
    return mlflow.active_run().info.run_id


def log_params(params: dict) -> None:
    """Log params, leaving alone any that `mlflow run` already logged (MLflow forbids changing
    a param; the user's spelling stays, the resolved config is in config.json)."""
    run = mlflow.active_run()
    existing = MlflowClient().get_run(run.info.run_id).data.params
    new = {k: str(v) for k, v in params.items() if k not in existing}
    if new:
        mlflow.log_params(new)
    mlflow.log_dict(params, CONFIG_ARTIFACT)


def set_tags(tags: dict) -> None:
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_metrics(metrics: dict, step: int | None = None) -> None:
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def manifest_digest(manifest: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    for relpath, sha in sorted(zip(manifest["relpath"], manifest["sha256"], strict=True)):
        digest.update(f"{relpath}:{sha}\n".encode())
    return digest.hexdigest()[:16]


def log_manifest(manifest: pd.DataFrame, name: str, source: str) -> str:
    """Log a subset's manifest as a dataset input (context = `name`) and as a CSV artifact.

    MLflow resolves `source` to a dataset source type; URIs it has no type for (`models:/`,
    `runs:/`, `mlflow-artifacts:/`) are kept in the input's `source_uri` tag instead.
    """
    columns = [c for c in manifest.columns if c != "path"]
    frame = manifest[columns].reset_index(drop=True)
    digest = manifest_digest(manifest)
    with warnings.catch_warnings():
        # A local path matches two equivalent MLflow source types; it picks one and warns.
        warnings.filterwarnings("ignore", message=".*interpreted in multiple ways.*")
        try:
            dataset = mlflow.data.from_pandas(frame, source=source, name=name, digest=digest)
        except MlflowException:
            dataset = mlflow.data.from_pandas(frame, name=name, digest=digest)
    mlflow.log_input(dataset, context=name, tags={"source_uri": str(source)})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.csv"
        frame.to_csv(path, index=False)
        mlflow.log_artifact(str(path), MANIFESTS_DIR)
    return digest


def log_figure(fig, artifact_file: str) -> None:
    mlflow.log_figure(fig, artifact_file)


def log_dict(data, artifact_file: str) -> None:
    mlflow.log_dict(data, artifact_file)


def log_table(frame: pd.DataFrame, artifact_file: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        frame.to_csv(path, index=False)
        mlflow.log_artifact(str(path), str(Path(artifact_file).parent))


def log_artifact(path: str | Path, artifact_dir: str | None = None) -> None:
    mlflow.log_artifact(str(path), artifact_dir)


def classifier_signature() -> ModelSignature:
    from pneumonia_aug.serving.pyfunc import IMAGE_COLUMN

    return ModelSignature(
        inputs=Schema([ColSpec("string", IMAGE_COLUMN)]),
        outputs=Schema([ColSpec("double", "probability"), ColSpec("string", "label")]),
    )


def _log_code_model(code_file: str, state_dict: dict, config: dict, signature: ModelSignature,
                    input_example: pd.DataFrame, registered_name: str, metadata: dict | None):
    """Log a torch model as a pyfunc "from code" (weights as a plain state_dict) and register it."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "weights.pt"
        torch.save(state_dict, weights)
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps(config, indent=2))
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PACKAGE_DIR / "serving" / code_file),
            artifacts={"weights": str(weights), "config": str(config_path)},
            code_paths=[str(PACKAGE_DIR)],
            signature=signature,
            input_example=input_example,
            registered_model_name=registered_name,
            metadata=metadata,
            pip_requirements=_pip_requirements(),
        )


def log_classifier_model(state_dict: dict, config: dict, example_images: list[str | Path],
                         metadata: dict | None = None):
    """Log the classifier and register it as `pneumonia-chexnet`; returns MLflow's ModelInfo."""
    from pneumonia_aug.serving import pyfunc

    example = pd.DataFrame({pyfunc.IMAGE_COLUMN: [pyfunc.encode_image_file(p)
                                                  for p in example_images]})
    return _log_code_model("mlflow_chexnet.py", state_dict, config, classifier_signature(),
                           example, CLASSIFIER_MODEL, metadata)


def generator_model_name(gan: str) -> str:
    """`pneumonia-dcgan-generator` / `pneumonia-cgan-generator`."""
    return f"pneumonia-{gan.lower()}-generator"


def log_generator_model(gan: str, state_dict: dict, config: dict, metadata: dict | None = None):
    """Log a GAN generator and register it as `pneumonia-{dcgan,cgan}-generator`."""
    signature = ModelSignature(
        inputs=Schema([ColSpec("long", "n"), ColSpec("long", "seed"),
                       ColSpec("string", "label", required=False)]),
        outputs=Schema([ColSpec("long", "row"), ColSpec("long", "index"),
                        ColSpec("string", "image")]),
    )
    example = pd.DataFrame({"n": [2], "seed": [0], "label": ["NORMAL"]})
    return _log_code_model("mlflow_generator.py", state_dict, config, signature, example,
                           generator_model_name(gan), metadata)


def load_python_model(model_uri: str):
    """A registered model's Python object, with a clear error when it cannot be loaded."""
    try:
        return mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    except MlflowException as exc:
        raise TrackingError(f"cannot load {model_uri}: {exc.message.splitlines()[0]}. "
                            "See the versions in the UI (Models tab) or train one first.") from exc


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in
            ("mlflow", "torch", "torchvision", "numpy", "pandas", "pillow", "scikit-learn")]




# --- finding upstream runs -------------------------------------------------------------

GENERATED_DIR = "generated"  # artifact folder of a generate run: the PNGs


def latest_finished_run(experiment_id: str, tags: dict) -> str | None:
    """The newest FINISHED run in the experiment whose tags all match, or None."""
    clauses = [f"tags.{k} = '{v}'" for k, v in tags.items()]
    clauses.append("attributes.status = 'FINISHED'")
    runs = MlflowClient().search_runs([experiment_id], " and ".join(clauses),
                                      order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


def run_tags(run_id: str) -> dict:
    return MlflowClient().get_run(run_id).data.tags


def download_artifacts(run_id: str, artifact_path: str, dst: str | Path) -> Path:
    Path(dst).mkdir(parents=True, exist_ok=True)
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path,
                                                    dst_path=str(dst)))


# --- querying classifier runs for the comparison ------------------------------------------

RUN_METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "auroc")


def experiment_id(experiment_name: str) -> str | None:
    experiment = MlflowClient().get_experiment_by_name(experiment_name)
    return experiment.experiment_id if experiment else None


def classifier_runs(experiment_ids: list[str], run_ids: list[str] | None = None) -> pd.DataFrame:
    """One row per classifier run (all of the experiments', or those in `run_ids`):
    run_id, setting, seed, status, test_* metrics."""
    query = "tags.stage = 'train_classifier'"
    if run_ids is not None:
        ids = ", ".join(f"'{r}'" for r in run_ids) or "''"
        query += " and attributes.run_id IN ({})".format(ids)
    rows = []
    for run in _search_all(experiment_ids, query):
        metrics = run.data.metrics
        rows.append({"run_id": run.info.run_id, "setting": run.data.tags.get("setting", ""),
                     "seed": int(run.data.tags.get("seed", -1)), "status": run.info.status,
                     **{f"test_{m}": metrics.get(f"test_{m}", float("nan")) for m in RUN_METRICS}})
    columns = ["run_id", "setting", "seed", "status", *(f"test_{m}" for m in RUN_METRICS)]
    return pd.DataFrame(rows, columns=columns)


def _search_all(experiment_ids: list[str], query: str) -> list:
    client, runs, token = MlflowClient(), [], None
    while True:
        page = client.search_runs(experiment_ids, query, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def load_predictions(run_id: str) -> pd.DataFrame | None:
    """A classifier run's per-image test predictions, or None when it has none."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=PREDICTIONS_ARTIFACT, dst_path=tmp)
        except (MlflowException, OSError):
            return None
        return pd.read_csv(path)


# --- registry aliases ---------------------------------------------------------------------

CHAMPION = "champion"  # the classifier version with the lowest validation loss (never test)
# The newest version of each generator. MLflow reserves the alias name `latest` (its own
# `models:/NAME/latest` URI means the highest version number), hence `newest`.
NEWEST = "newest"


def tag_version(name: str, version: str, tags: dict) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def promote_champion(name: str = CLASSIFIER_MODEL) -> str | None:
    """Point `@champion` at the version with the lowest `best_val_loss` tag; return it."""
    client = MlflowClient()
    scored = [(float(v.tags["best_val_loss"]), int(v.version))
              for v in client.search_model_versions(f"name='{name}'")
              if "best_val_loss" in v.tags]
    if not scored:
        return None
    _, best = min(scored)
    client.set_registered_model_alias(name, CHAMPION, str(best))
    return str(best)


def set_newest(name: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, NEWEST, str(version))


def log_image(image, artifact_file: str) -> None:
    mlflow.log_image(image, artifact_file=artifact_file)


def artifact_uri(artifact_path: str) -> str:
    return mlflow.get_artifact_uri(artifact_path)


def log_artifacts(folder: str | Path, artifact_dir: str) -> None:
    mlflow.log_artifacts(str(folder), artifact_dir)


def model_version_of(model_uri: str) -> tuple[str, str]:
    """(version, source run id) behind `models:/NAME@alias` or `models:/NAME/version`."""
    name, _, ref = model_uri.removeprefix("models:/").partition("@")
    client = MlflowClient()
    try:
        if ref:
            version = client.get_model_version_by_alias(name, ref)
        else:
            name, _, number = model_uri.removeprefix("models:/").partition("/")
            version = client.get_model_version(name, number)
    except MlflowException as exc:
        raise TrackingError(f"no registered model at {model_uri}: train it first "
                            f"({exc.message.splitlines()[0]})") from exc
    return str(version.version), version.run_id or ""


# --- run reuse (the study) -----------------------------------------------------------------

RUN_KEY_TAG = "run_key"


def code_version() -> str:
    """The commit, plus a digest of uncommitted changes, so edited code never reuses a run."""
    commit = git_commit()
    try:
        diff = subprocess.run(["git", "diff", "HEAD", "--", "."], cwd=PACKAGE_DIR,
                              capture_output=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        diff = b""
    return f"{commit}+{hashlib.sha256(diff).hexdigest()[:8]}" if diff else commit


def normalize_param(value) -> str:
    """MLflow returns params as strings: compare `2`, `2.0` and `"2"` as the same value."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    return repr(int(number)) if number.is_integer() else repr(number)


def run_key(stage: str, params: dict, upstream: dict) -> str:
    payload = {"stage": stage, "code": code_version(), "upstream": upstream,
               "params": {k: normalize_param(v) for k, v in sorted(params.items())}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def find_reusable_run(experiment_name: str, key: str, params: dict) -> str | None:
    """A FINISHED run with this key whose logged params match `params`, or None."""
    experiment = experiment_id(experiment_name)
    if experiment is None:
        return None
    runs = MlflowClient().search_runs(
        [experiment], f"tags.{RUN_KEY_TAG} = '{key}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=5)
    for run in runs:
        logged = run.data.params
        if all(normalize_param(logged.get(k)) == normalize_param(v) for k, v in params.items()):
            return run.info.run_id
    return None


def tag_run(run_id: str, tags: dict) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, str(value))


def run_info(run_id: str):
    return MlflowClient().get_run(run_id)


def read_text_artifact(run_id: str, artifact_path: str) -> str:
    return mlflow.artifacts.load_text(f"runs:/{run_id}/{artifact_path}")


def read_dict_artifact(run_id: str, artifact_path: str) -> dict | None:
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{artifact_path}")
    except (MlflowException, OSError):
        return None


def ensure_reachable(experiment_name: str | None = None, timeout: float = 5.0) -> None:
    """Fail in seconds, with a clear message, when the tracking server does not answer or,
    for an experiment whose artifacts this client writes to S3 itself (`s3://` location), when
    the bucket is missing or the key is wrong (MLflow's own client would retry for minutes)."""
    from pneumonia_aug.services.checks import check_s3, check_tracking_server

    check_tracking_server(mlflow.get_tracking_uri(), timeout=timeout)
    experiment = MlflowClient().get_experiment_by_name(experiment_name) if experiment_name else None
    location = experiment.artifact_location if experiment else ""
    if location.startswith("s3://"):
        env = os.environ.get
        check_s3(env("MLFLOW_S3_ENDPOINT_URL") or None, env("AWS_ACCESS_KEY_ID") or None,
                 env("AWS_SECRET_ACCESS_KEY") or None, location[5:].split("/")[0])


# --- resuming an interrupted run -------------------------------------------------------------

@contextlib.contextmanager
def resume_run(run_id: str) -> Iterator[mlflow.ActiveRun]:
    """Reopen an unfinished run (its status goes back to RUNNING) to log into it again; like
    `start_run`, an exception marks it FAILED and Ctrl-C (or SIGTERM, see the stages) KILLED."""
    launched = os.environ.get("MLFLOW_RUN_ID")
    if launched and launched != run_id:
        raise TrackingError(f"cannot resume run {run_id} inside the new run {launched} that "
                            f"`mlflow run` made: run `pneumonia-aug ... --resume {run_id}` "
                            f"directly, or `mlflow run --run-id {run_id} ...`")
    with mlflow.start_run(run_id=run_id) as run:
        try:
            yield run
        except KeyboardInterrupt:
            mlflow.end_run("KILLED")
            raise


def metric_steps(run_id: str) -> dict[str, set[int]]:
    """The steps each metric of the run has been logged at."""
    client = MlflowClient()
    keys = client.get_run(run_id).data.metrics
    return {key: {m.step for m in client.get_metric_history(run_id, key)} for key in keys}

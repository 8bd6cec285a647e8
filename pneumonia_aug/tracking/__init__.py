"""The one layer that talks to MLflow: a thin, generic adapter.

It knows no stage and no model: what to log and what the names mean is decided above it
(`contract`, `stages/`, `serving/`). MLflow's exceptions are turned into `TrackingError` here,
so no other module imports `mlflow` (except the pyfunc classes, which subclass MLflow's).
Callers use `from pneumonia_aug import tracking` and the names below; the modules:

- `runs.py`: a run's life: `start_run` (a new run, or a claimed one continued by its id,
  `study/reuse.py`), `resume_run`, failures recorded on the run (`record_failure`);
- `records.py`: runs by id (look up, search, create, tag, describe, nest, end, delete) and
  their experiments; `normalize_param`;
- `active_run.py`: the active run's ids and what is logged into it: params, tags, metrics,
  figures, tables, files, data subsets as dataset inputs (`log_manifest`);
- `artifacts.py`: a run's artifacts read back, or copied to another run;
- `registry.py`: pyfunc models logged and loaded, registered versions, tags, aliases,
  descriptions;
- `validation.py`: logged metrics checked against thresholds (MLflow's model validation);
- `outages.py`: reachability and outages, and what the outbox sends into a run by id;
- `failures.py`: exceptions as one line; `ui.py`: the UI's reserved tags, page and file
  addresses.
"""

from pneumonia_aug.tracking.active_run import (
    active_experiment_id,
    active_run_id,
    artifact_uri,
    current_run_id,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_image,
    log_manifest,
    log_metrics,
    log_params,
    log_table,
    log_text,
    manifest_digest,
    set_tags,
)
from pneumonia_aug.tracking.artifacts import (
    copy_artifacts,
    download_artifacts,
    read_csv_artifact,
    read_dict_artifact,
    read_text_artifact,
)
from pneumonia_aug.tracking.failures import failure_line
from pneumonia_aug.tracking.outages import (
    ensure_reachable,
    is_outage,
    log_metric_rows,
    metric_steps,
    now_ms,
    reachable,
    single_try,
    tracking_uri,
    upload_artifact,
)
from pneumonia_aug.tracking.records import (
    add_to_description,
    create_run,
    delete_run,
    delete_tags,
    describe_run,
    experiment_id,
    input_digest,
    latest_finished_run,
    metric_history,
    normalize_param,
    reading_store,
    run_address,
    run_description,
    run_info,
    run_tags,
    search_runs,
    set_parent,
    tag_run,
    target_experiment_id,
    terminate_run,
    use_experiment,
)
from pneumonia_aug.tracking.registry import (
    add_to_version_description,
    alias_version,
    describe_registered_model,
    describe_version,
    distributions_by_module,
    load_python_model,
    log_pyfunc_model,
    model_version,
    model_version_of,
    model_versions,
    set_alias,
    tag_version,
    warm_requirement_checks,
)
from pneumonia_aug.tracking.runs import (
    record_failure,
    resume_run,
    start_run,
)
from pneumonia_aug.tracking.ui import (
    DEFAULT_UI,
    DESCRIPTION_TAG,
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING_KIND,
    PARENT_TAG,
    TAG_VALUE_LIMIT,
    artifact_file,
    artifact_page,
    model_version_page,
    run_page,
    ui_address,
)
from pneumonia_aug.tracking.validation import metric_failures

__all__ = [
    "DEFAULT_UI", "DESCRIPTION_TAG", "EXPERIMENT_KIND_TAG", "MODEL_TRAINING_KIND", "PARENT_TAG",
    "TAG_VALUE_LIMIT", "active_experiment_id", "active_run_id", "add_to_description",
    "add_to_version_description", "alias_version", "artifact_file", "artifact_page",
    "artifact_uri", "copy_artifacts", "create_run", "current_run_id", "delete_run",
    "delete_tags", "describe_registered_model", "describe_run", "describe_version",
    "distributions_by_module",
    "download_artifacts", "ensure_reachable", "experiment_id", "failure_line", "input_digest",
    "is_outage", "latest_finished_run", "load_python_model", "log_artifact", "log_artifacts",
    "log_dict", "log_figure", "log_image", "log_manifest", "log_metric_rows", "log_metrics",
    "log_params", "log_pyfunc_model", "log_table", "log_text", "manifest_digest",
    "metric_failures", "metric_history", "metric_steps", "model_version", "model_version_of",
    "model_version_page", "model_versions", "normalize_param", "now_ms",
    "reachable", "read_csv_artifact", "read_dict_artifact", "read_text_artifact",
    "reading_store", "record_failure", "resume_run", "run_address", "run_description",
    "run_info", "run_page", "run_tags", "search_runs", "set_alias", "set_parent", "set_tags",
    "single_try", "start_run", "tag_run", "tag_version",
    "target_experiment_id", "terminate_run", "tracking_uri", "ui_address", "upload_artifact",
    "use_experiment", "warm_requirement_checks",
]

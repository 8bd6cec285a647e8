"""What MLflow's UI reads: its reserved tags, its cap on a tag value, and the addresses of its
pages and of a run's files (for links and pictures in descriptions). Names only: nothing here
talks to MLflow."""

from urllib.parse import quote

from pneumonia_aug.reachability import has_server

DESCRIPTION_TAG = "mlflow.note.content"  # the UI's description of a run or a logged model
PARENT_TAG = "mlflow.parentRunId"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
# The experiment kind "model training" (mlflow/server/js: ExperimentKind.
# CUSTOM_MODEL_DEVELOPMENT). MLflow 3.17's UI does not go by it: it opens every experiment in
# its GenAI view until "Model training" is clicked at the top of the page (it remembers that
# choice in the browser) or the address asks for the view (`WORKFLOW_QUERY`).
MODEL_TRAINING_KIND = "custom_model_development"
# The UI's view, read from the query of its hash-routed address (`#/experiments/1?...`):
# MLflow 3's WorkflowTypeProvider takes `workflowType` from the route's search parameters
# before the choice it keeps in the browser's local storage (`mlflow.workflowType`).
WORKFLOW_QUERY = "workflowType=machine_learning"
TAG_VALUE_LIMIT = 8000  # MLflow's cap on a tag value


def _page(route: str) -> str:
    return f"#/{route}?{WORKFLOW_QUERY}"


def run_page(experiment_id: str, run_id: str) -> str:
    """The UI's address of a run, relative to the UI's root (a link in a description), in
    the model-training view."""
    return _page(f"experiments/{experiment_id}/runs/{run_id}")


def model_version_page(name: str, version: str) -> str:
    return _page(f"models/{name}/versions/{version}")


def artifact_page(experiment_id: str, run_id: str, path: str) -> str:
    """The run's Artifacts tab with the file `path` open."""
    return _page(f"experiments/{experiment_id}/runs/{run_id}/artifacts/{path}")


def artifact_file(run_id: str, path: str) -> str:
    """The file itself, as the UI's server hands it out (relative to the UI's root, as the
    pages are): a picture in a description (`![...](address)`) shows in place."""
    return f"get-artifact?path={quote(path)}&run_uuid={run_id}"


def ui_address(tracking_uri: str, page: str) -> str:
    """A page's full address: on the tracking server's own UI for an http(s) store, else on
    `mlflow ui` at its default address."""
    root = tracking_uri if has_server(tracking_uri) else DEFAULT_UI
    return f"{root.rstrip('/')}/{page}"


DEFAULT_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves a local store


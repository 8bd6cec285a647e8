"""What MLflow's UI reads: its reserved tags, its cap on a tag value, and the addresses of its
pages (for links in descriptions). Names only: nothing here talks to MLflow."""

DESCRIPTION_TAG = "mlflow.note.content"  # the UI's description of a run or a logged model
PARENT_TAG = "mlflow.parentRunId"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
# The UI's "Machine learning" kind (its training views), read from the experiment tag; the
# values are the UI's (mlflow/server/js: ExperimentKind.CUSTOM_MODEL_DEVELOPMENT).
MODEL_TRAINING_KIND = "custom_model_development"
TAG_VALUE_LIMIT = 8000  # MLflow's cap on a tag value


def run_page(experiment_id: str, run_id: str) -> str:
    """The UI's address of a run, relative to the UI's root (a link in a description)."""
    return f"#/experiments/{experiment_id}/runs/{run_id}"


def model_version_page(name: str, version: str) -> str:
    return f"#/models/{name}/versions/{version}"

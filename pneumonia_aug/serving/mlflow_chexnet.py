"""MLflow "models from code" entry for the CheXNet classifier: MLflow runs this file when it
loads the model. Not meant to be imported by the package."""

import mlflow

from pneumonia_aug.serving.pyfunc import CheXNetPyfunc

mlflow.models.set_model(CheXNetPyfunc())

"""MLflow "models from code" entry for the GAN generators: MLflow runs this file when it
loads the model. Not meant to be imported by the package."""

import mlflow

from pneumonia_aug.serving.generator_pyfunc import GeneratorPyfunc

mlflow.models.set_model(GeneratorPyfunc())

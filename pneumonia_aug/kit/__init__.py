"""The offline GPU kit: run a study (and the benches) on an air-gapped GPU machine that has
PyTorch but no MLflow and no network, and bring the MLflow store back (`pneumonia-aug kit
prepare | run | import`, docs/offline-gpu.md).

`prepare` (here) builds the one carried folder, `run` (there) installs the carried wheels
offline and runs the steps within the time budget, `import` (here) unpacks the outputs so that
`mlflow ui` shows the study's runs and the table lands in the docs.
"""

"""The device kit: run the bench and a study on a lent GPU machine and bring the MLflow store
back (`pneumonia-aug kit prepare | run | import`, README "Results").

`prepare` (here) builds the one carried folder, `run` (there) installs the carried wheels
offline and runs the steps within the time budget, `import` (here) unpacks the outputs so that
`mlflow ui` shows the study's runs and the table lands in the docs.
"""

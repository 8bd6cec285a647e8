"""The stages: each one MLflow run (train_gan, generate, train_classifier, compare, predict)
and what they share (a run's life, checkpoints, descriptions)."""

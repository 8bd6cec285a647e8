"""pneumonia-aug: GAN data augmentation for pediatric pneumonia diagnosis, tracked in MLflow.

Reproduces Tung et al., "Better Pneumonia Diagnosis with GAN-enabling Data Augmentation"
(KAIST). See README.md and docs/protocol.md for the protocol.
"""

__version__ = "0.1.0"

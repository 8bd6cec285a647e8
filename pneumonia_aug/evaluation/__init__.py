"""Evaluation: test metrics, Table 1 statistics and reports, GAN quality, Grad-CAM, plots."""

"""Figures people would rather look at than read: learning curves, confusion matrix, ROC,
reliability diagram, GAN losses. The ROC and reliability figures load scikit-learn and SciPy
when drawn: a GAN run, which draws neither, starts without them (about a second)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global state, no display needed
from matplotlib.ticker import MaxNLocator

from pneumonia_aug.contract import (
    D_FAKE,
    D_LOSS,
    D_REAL,
    G_LOSS,
    TRAIN_LOSS,
    VAL_LOSS,
    val_metric,
)

# Per-epoch curves get a marker on each epoch: a run of one epoch is one point, which a line
# alone does not draw.
EPOCH_MARKS = {"marker": "o", "markersize": 4}


def _epoch_axis(ax, epochs: list[int]) -> None:
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 0.98
    if len(set(epochs)) == 1:  # one point: a whole epoch either side, so ticks fall on epochs
        ax.set_xlim(epochs[0] - 1, epochs[0] + 1)


def learning_curves(history: list[dict], best_epoch: int | None = None):
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_metric = fig.subplots(1, 2)
    ax_loss.plot(epochs, [h[TRAIN_LOSS] for h in history], label="train loss", **EPOCH_MARKS)
    ax_loss.plot(epochs, [h[VAL_LOSS] for h in history], label="validation loss",
                 **EPOCH_MARKS)
    for measure in ("accuracy", "recall", "specificity", "auroc"):
        ax_metric.plot(epochs, [h[val_metric(measure)] for h in history], label=measure,
                       **EPOCH_MARKS)
    for ax in (ax_loss, ax_metric):
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
        _epoch_axis(ax, epochs)
        ax.legend()
    ax_loss.set_title("Loss (BCE)")
    ax_metric.set_title("Validation metrics")
    fig.tight_layout()
    return fig


def confusion_matrix_figure(metrics: dict, title: str = "Test confusion matrix"):
    matrix = np.array([[metrics["tn"], metrics["fp"]], [metrics["fn"], metrics["tp"]]])
    fig = Figure(figsize=(4.5, 4))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    names = ["NORMAL", "PNEUMONIA"]
    ax.set_xticks([0, 1], names)
    ax.set_yticks([0, 1], names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(matrix):
        color = "white" if value > matrix.max() / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", color=color, fontsize=14)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def roc_figure(labels: np.ndarray, probs: np.ndarray, auroc: float, title: str = "Test ROC"):
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, probs)
    fig = Figure(figsize=(4.5, 4))
    ax = fig.subplots()
    ax.plot(fpr, tpr, label=f"AUROC {auroc:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--")
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (recall)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def reliability_figure(labels: np.ndarray, curves: dict[str, np.ndarray],
                       title: str = "Test reliability"):
    """Per equal-width probability bin (`evaluation.calibration`), the fraction of PNEUMONIA
    against the mean probability, for each named set of probabilities in `curves`, with its
    ECE; the diagonal is perfect calibration. Below: how many images fall in each bin."""
    from pneumonia_aug.evaluation.calibration import (
        N_BINS,
        calibration_bins,
        expected_calibration_error,
    )

    fig = Figure(figsize=(5, 6))
    ax, ax_count = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    for name, probs in curves.items():
        bins = [b for b in calibration_bins(labels, probs) if b[0]]
        ece = expected_calibration_error(labels, probs)
        ax.plot([b[1] for b in bins], [b[2] for b in bins], marker="o",
                label=f"{name} (ECE {ece:.3f})")
        ax_count.hist(probs, bins=np.linspace(0, 1, N_BINS + 1),
                      histtype="step", label=name)
    ax.set_ylabel("fraction PNEUMONIA")
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax_count.set_xlabel("predicted probability of PNEUMONIA")
    ax_count.set_ylabel("images")
    fig.tight_layout()
    return fig


def gan_losses(history: list[dict], title: str = "GAN losses"):
    """D and G loss per epoch with D's mean outputs (the paper's Figure 6, plus D(x), D(G(z)))."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_d = fig.subplots(1, 2)
    ax_loss.plot(epochs, [h[D_LOSS] for h in history], label="discriminator loss",
                 **EPOCH_MARKS)
    ax_loss.plot(epochs, [h[G_LOSS] for h in history], label="generator loss",
                 **EPOCH_MARKS)
    ax_loss.set_title(title)
    ax_d.plot(epochs, [h[D_REAL] for h in history], label="mean D(x), real", **EPOCH_MARKS)
    ax_d.plot(epochs, [h[D_FAKE] for h in history], label="mean D(G(z)), generated",
              **EPOCH_MARKS)
    ax_d.set_ylim(0, 1)
    ax_d.set_title("Discriminator outputs")
    for ax in (ax_loss, ax_d):
        _epoch_axis(ax, epochs)
        ax.legend()
    fig.tight_layout()
    return fig

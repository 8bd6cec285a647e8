"""The project's own figures: a run of one epoch still draws its learning curves."""

from pneumonia_aug.evaluation import plots


def _drawn(fig) -> list:
    return [line for ax in fig.axes for line in ax.get_lines() if line.get_label() != "_nolegend_"
            and not line.get_label().startswith("best epoch")]


def test_one_epoch_learning_curves_show_their_points():
    row = {"epoch": 1, "epoch/loss_train": 0.7, "epoch/loss_val": 0.6, "epoch/val_accuracy": 0.5,
           "epoch/val_recall": 0.9, "epoch/val_specificity": 0.1, "epoch/val_auroc": 0.6}
    fig = plots.learning_curves([row], best_epoch=1)
    lines = _drawn(fig)
    assert len(lines) == 6 and all(line.get_marker() == "o" for line in lines)
    assert all(len(line.get_xdata()) == 1 for line in lines)
    fig.canvas.draw()
    assert list(fig.axes[0].get_xticks()) == [0, 1, 2]  # whole epochs, not 0.96 to 1.04


def test_one_epoch_gan_losses_show_their_points():
    row = {"epoch": 1, "epoch/d_loss": 1.3, "epoch/g_loss": 0.7, "epoch/d_real": 0.6,
           "epoch/d_fake": 0.4}
    lines = _drawn(plots.gan_losses([row]))
    assert len(lines) == 4 and all(line.get_marker() == "o" for line in lines)

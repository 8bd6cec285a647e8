"""A registered classifier's model card: what it is for, what it learned from, how well it does
at the operating point it serves, for whom, how calibrated, what it cannot be trusted for, and
how to load it. Written from the run's own numbers (each a logged metric, or a count of its
test images); logged as `model_card.md` and added to the version's description.

Intervals here cover the test set only (Wilson 95% over its images): they say how precisely
624 X-rays pin down this one trained model, not how much another training run would differ
(Table 1 measures that over seeds).
"""

from __future__ import annotations

from pneumonia_aug.config import ClassifierConfig
from pneumonia_aug.contract import (
    CHOSEN_TEMPERATURE,
    CHOSEN_THRESHOLD,
    TEST,
    TEST_AUROC,
    TEST_OP,
    TEST_OP_RECALL,
    TEST_RECALL,
    metric,
)
from pneumonia_aug.evaluation.subgroups import SUBTYPES, wilson_interval

CARD_ARTIFACT = "model_card.md"


def _rate(value: float, n: int) -> str:
    low, high = wilson_interval(round(value * n), n)
    return f"{value:.3f} [{low:.3f}, {high:.3f}] (n = {n})"


def model_card(cfg: ClassifierConfig, metrics: dict, n_positive: int, n_negative: int,
               n_subtype: dict[str, int], digest: str, run_id: str, uri: str) -> str:
    """The card as Markdown. `metrics`: the run's `test/*`, `test_op/*` and `model/*`
    metrics; `n_positive` / `n_negative`: PNEUMONIA / NORMAL test images; `n_subtype`: the
    PNEUMONIA test images of each subtype."""
    m = metrics

    def test(name: str) -> float:
        return m[metric(TEST, name)]

    def op(name: str) -> float:
        return m[metric(TEST_OP, name)]

    subgroups = "; ".join(
        f"{s} {_rate(op(f'recall_{s}'), n_subtype[s])}"
        for s in SUBTYPES if metric(TEST_OP, f"recall_{s}") in m and n_subtype.get(s))
    cap = (f"at most {cfg.max_images_per_split} images per split (a debug cap: not for use)"
           if cfg.max_images_per_split else "the full data")
    return "\n".join([
        f"## Model card: {uri}",
        "",
        "**Intended use.** Research on pediatric chest X-rays: reproducing and extending Tung et "
        "al.'s GAN-augmentation study. Not a medical device; not for diagnosis or triage of any "
        "patient.",
        "",
        f"**Training data.** The Kermany pediatric chest X-ray set (Kermany et al., Cell 2018; "
        f"Mendeley Data doi:10.17632/rscbjbr9sj.2, CC BY 4.0), {cap}, setting {cfg.setting} "
        f"(seed {cfg.seed}), data digest {digest}; run {run_id}.",
        "",
        f"**Input.** One grayscale X-ray (JPEG or PNG, any size), resized to {cfg.image_size} x "
        f"{cfg.image_size} px and scaled to [0, 1] as in training; DenseNet121 from scratch "
        f"(pretrained: {cfg.pretrained}), one sigmoid output: P(PNEUMONIA).",
        "",
        f"**Operating point.** Label PNEUMONIA at probability >= {m[CHOSEN_THRESHOLD]:.3f}, the "
        f"threshold the rule `{cfg.threshold_rule}` chose on the validation split (never on "
        f"test), applied to probabilities calibrated with temperature "
        f"{m[CHOSEN_TEMPERATURE]:.2f} (also fitted on validation).",
        "",
        f"**Test results at that point** (threshold {m[CHOSEN_THRESHOLD]:.3f}, calibrated; "
        "Wilson 95% over the test images):",
        f"- sensitivity (recall) {_rate(m[TEST_OP_RECALL], n_positive)}",
        f"- specificity {_rate(op('specificity'), n_negative)}",
        f"- accuracy {_rate(op('accuracy'), n_positive + n_negative)}",
        f"- AUROC {m[TEST_AUROC]:.3f}; sensitivity at 95% specificity "
        f"{test('sens_at_spec95'):.3f}, specificity at 95% sensitivity "
        f"{test('spec_at_sens95'):.3f}",
        f"- at 0.5 instead (Table 1): sensitivity {m[TEST_RECALL]:.3f}, specificity "
        f"{test('specificity'):.3f}, accuracy {test('accuracy'):.3f}",
        "",
        f"**Subgroups** (recall at the operating point): {subgroups or 'not measured'}.",
        "",
        f"**Calibration.** Expected calibration error (10 equal-width bins) "
        f"{test('ece'):.3f} before and {test('ece_calibrated'):.3f} after temperature "
        f"scaling; Brier score {test('brier'):.3f} -> {test('brier_calibrated'):.3f}.",
        "",
        "**Known limitations.** One hospital (Guangzhou Women and Children's Medical Center), "
        "children aged one to five only: adults and other sites are out of distribution. The "
        "official train and test folders may share patients (their overlap is unknown). Labels "
        "are image-level, from two graders. One training run: another seed moves test accuracy "
        "by a few points (Table 1's spread). At 32 px the heatmap has no spatial resolution.",
        "",
        "**Load it.** `mlflow.pyfunc.load_model(\"" + uri + "\")`, then `predict` on a frame "
        "with one base64-encoded image file per row; or `pneumonia-aug predict --model "
        f"{uri} x.jpeg`.",
    ]) + "\n"

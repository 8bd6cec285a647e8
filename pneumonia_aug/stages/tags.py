"""Tags of stage runs that a study writes and reads without training anything: importing this
module (like `stages.interrupts`) costs no torch, so a study process decides what to launch
before it has loaded any of the training code."""

from __future__ import annotations

from pneumonia_aug import tracking
from pneumonia_aug.contract import (
    TAG_CODE_VERSION,
    TAG_FID_FEATURE_MODEL_URI,
    TAG_GIT_COMMIT,
    TAG_QUALITY_SKIPPED_IN,
    TAG_STAGE,
)
from pneumonia_aug.provenance import code_version, git_commit


def stage_tags(stage: str, **tags) -> dict:
    """The tags every stage run carries (stage, commit as MLflow's source version, code
    version) plus its own."""
    return {TAG_STAGE: stage, TAG_GIT_COMMIT: git_commit(), TAG_CODE_VERSION: code_version(),
            **tags}


def quality_settled(gan_run_id: str, feature_model_uri: str) -> bool:
    """Whether the GAN run's quality was measured in that feature network, or found not
    measurable there: a study does not launch the measurement again for it."""
    tags = tracking.run_tags(gan_run_id)
    return feature_model_uri in (tags.get(TAG_FID_FEATURE_MODEL_URI),
                                 tags.get(TAG_QUALITY_SKIPPED_IN))

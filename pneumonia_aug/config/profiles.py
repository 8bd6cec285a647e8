"""The study's profiles: the scale of every stage a study launches, from the paper's to the
tests' (`study --profile`), and the settings that carry the paper's claim."""

from __future__ import annotations

from dataclasses import dataclass

from pneumonia_aug.config.lr import AUTHORS_GAN_BATCH_SIZE, PAPER_BATCH_SIZE
from pneumonia_aug.contract import N_GENERATED

# The GAN design of a study: seed s of a GAN row draws from a GAN trained with seed s (each
# pair an independent draw of the whole method), or every seed from one shared GAN.
PER_SEED, SHARED = "per-seed", "shared"
GAN_SEEDS = (PER_SEED, SHARED)


@dataclass(frozen=True)
class Profile:
    """The scale of a study: sizes, epochs and caps of every stage it launches."""

    image_size: int
    gan_epochs: int
    gan_batch_size: int
    classifier_epochs: int
    classifier_batch_size: int
    n_images: int  # generated images per GAN
    max_images_per_split: int = 0  # 0 = all
    gan_max_images: int = 0  # 0 = all
    sample_every: int = 10
    eval_images: int = 500  # generated images per FID/KID evaluation and memorization check
    settings: str = "table1"  # what `study --settings ''` runs (see study/nodes.py)
    seeds: str = "0,1,2"  # what `study --seeds ''` runs
    lr_scaling: str = "none"  # classifier and GANs, from the paper's batch sizes
    gan_seeds: str = PER_SEED  # the GAN design (GAN_SEEDS)
    planned_seeds: int = 0  # pairs a power analysis planned (0: none; tables are not interim)


# The settings that carry the paper's claim (augmentation at r = 1 and r = 0.3).
CLAIM_SETTINGS = "Original-1.0-0.0,DCGAN-1.0-0.6,CGAN-1.0-0.6,Original-0.3-0.0,DCGAN-0.3-0.6"
# The paper's headline contrast: +3 accuracy points of DCGAN-1.0-0.6 over Original-1.0.
HEADLINE_SETTINGS = "Original-1.0-0.0,DCGAN-1.0-0.6"
# Pairs the claim study plans (docs/statistics.md, "Power"): the paired t-test at +0.03 with
# the GPU short study's SD of per-seed differences, 0.06, needs 34 pairs for 80% power at a
# two-sided 0.05 (noncentral t); one GAN per seed adds the GAN-to-GAN spread (1 point assumed:
# SD 0.061, 35 pairs) and the four planned looks' alpha spending a little more: 36, 9 a look.
CLAIM_PLANNED_SEEDS = 36

# The paper: 256 px, 500 GAN epochs at batch 128, 100 classifier epochs at batch 16, 4000
# generated images per GAN (sections 3.1-3.3 and the authors' code). The run configs' defaults
# are its values (`runs.py`).
PAPER = Profile(256, 500, AUTHORS_GAN_BATCH_SIZE, 100, PAPER_BATCH_SIZE, N_GENERATED)

PROFILES = {
    "paper": PAPER,
    # About 7 minutes on one H200 with 9 stages sharing it: the claim's settings at 128 px on
    # the full data, 3 seeds. Departs from the paper: 128 px not 256, 10 classifier epochs not
    # 100 at batch 64 not 16 (lr scaled by sqrt), GANs 80 epochs not 500, 5 settings not 12.
    # Cut from 15 classifier and 200 GAN epochs after the first H200 run (15/120 needed about
    # 11 minutes): the Originals, then the CGAN (all 4709 training images, after the Original
    # runs that give the feature network), its generation and its rows are the longest path.
    # The paper's headline contrast alone (Original-1.0-0.0 vs DCGAN-1.0-0.6) at the short
    # profile's scale, one GAN per seed, over the seeds the power analysis planned; run
    # seed-major on a GPU, across as many time-limited runs as it takes (docs/study.md).
    "claim": Profile(128, 80, AUTHORS_GAN_BATCH_SIZE, 10, 64, N_GENERATED, sample_every=40,
                     settings=HEADLINE_SETTINGS, lr_scaling="sqrt",
                     seeds=f"0-{CLAIM_PLANNED_SEEDS - 1}", planned_seeds=CLAIM_PLANNED_SEEDS),
    "short": Profile(128, 80, AUTHORS_GAN_BATCH_SIZE, 10, 64, N_GENERATED, sample_every=40,
                     settings=CLAIM_SETTINGS, lr_scaling="sqrt"),
    # Evidence on 2 CPU cores in about an hour: the full data at 32 px, the DCGAN rows of the
    # claim and their Originals, 3 seeds. Departs from the paper: 32 px, 10 classifier epochs
    # at batch 32, the DCGAN 150 epochs at batch 64, no CGAN.
    "medium": Profile(32, 150, 64, 10, 32, N_GENERATED, sample_every=25,
                      settings="Original-1.0-0.0,DCGAN-1.0-0.6,Original-0.3-0.0,DCGAN-0.3-0.6"),
    # Small enough for the whole study (one seed) on 2 CPU cores in under 20 minutes: a smoke
    # test on capped subsets, not evidence.
    "quick": Profile(32, 12, 64, 5, 32, 400, max_images_per_split=500, gan_max_images=512,
                     sample_every=4, eval_images=100),
    # For tests: the smallest thing that exercises every stage.
    "tiny": Profile(32, 1, 32, 1, 16, 20, max_images_per_split=40, gan_max_images=32,
                    sample_every=1, eval_images=8),
}

"""Which classifier runs may share a table, and a row: the comparison key, the generated set,
and the scale a group stands for.

Two runs are comparable when everything that shapes their test numbers, other than the
setting and the seed, is the same: the resolved training parameters, the validation split,
the data (digest), the debug cap, the code version (`provenance`), the training
precision (`bf16` autocast on CUDA, `fp32` on the CPU) and the world size (the number of
training processes). Every classifier run records their digest as the tag `comparison_key`;
`compare` builds one table per key and never averages runs of different keys in one row. The
parts themselves are what the run logged anyway: its params (`gan_seeds`, the GAN design,
among them), and the tags `dataset_digest`, `code_version`, `precision` and `world_size`
(`parts_of_run`). Runs made before kept them in one JSON tag, `comparison_parts`, and before
that one tag per part (`cmp.<part>`); both are read as they are. A GAN setting's run also
records the digest of the generated images it drew from (`generated_set`): in the shared GAN
design runs share a row only when they drew from the same set; in the per-seed design each
seed draws from its own GAN's set. Runs made before a part was recorded read it as `unknown`
(made before the per-seed design: shared).

`Scale` says, in words, at what scale a group was made (profile, size, epochs, the seeds that
finished, cap) and whether its numbers can stand beside the paper's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from pneumonia_aug.config import PROFILES
from pneumonia_aug.contract import (
    TAG_CODE_VERSION,
    TAG_DATASET_DIGEST,
    TAG_PRECISION,
    TAG_WORLD_SIZE,
)

KEY_TAG = "comparison_key"
PARTS_TAG = "comparison_parts"  # one JSON tag of the parts, on runs made before `parts_of_run`
LEGACY_PART_PREFIX = "cmp."  # one tag per part, on runs made before PARTS_TAG
UNKNOWN = "unknown"  # a part a run did not record (made before it was part of the key)
# The classifier config fields that shape the test numbers (the setting and seed aside).
CONFIG_PARTS = ("image_size", "epochs", "batch_size", "lr", "lr_scaling", "weight_decay",
                "lr_factor", "lr_patience", "crop_scale_min", "pretrained",
                "real_fraction_scope", "real_subset", "split_seed", "max_images_per_split",
                "gan_seeds")
PAPER_PROFILE = "paper"
# The parts that are no config field, in `comparison_parts`' order, and the run tag each is
# kept in.
RUN_PARTS = {"dataset_digest": TAG_DATASET_DIGEST, "code_version": TAG_CODE_VERSION,
             "precision": TAG_PRECISION, "world_size": TAG_WORLD_SIZE}


def comparison_parts(config: dict, dataset_digest: str, code_version: str, precision: str,
                     world_size: int | str) -> dict[str, str]:
    """The parts of a run's comparison key, as strings (what MLflow tags hold)."""
    parts = {name: str(config[name]) for name in CONFIG_PARTS if name in config}
    return parts | dict(zip(RUN_PARTS, (dataset_digest, code_version, precision,
                                        str(world_size)), strict=True))


def comparison_key(parts: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def key_tags(parts: dict[str, str]) -> dict[str, str]:
    """The tags a run adds for its comparison: `comparison_key`, and `precision` (the other
    parts are its params and tags already)."""
    return {KEY_TAG: comparison_key(parts), TAG_PRECISION: parts["precision"]}


def parts_of_run(params: dict, tags: dict) -> dict[str, str]:
    """A run's key parts, from its params and tags (`params` as MLflow returns them, compared
    as strings: normalise them first); from `comparison_parts` or `cmp.<part>` on a run
    made before."""
    if PARTS_TAG in tags:
        return {k: str(v) for k, v in json.loads(tags[PARTS_TAG]).items()}
    legacy = {k.removeprefix(LEGACY_PART_PREFIX): v for k, v in tags.items()
              if k.startswith(LEGACY_PART_PREFIX)}
    if legacy:
        return legacy
    return comparison_parts(params, *(tags.get(tag, UNKNOWN) for tag in RUN_PARTS.values()))


def differing_parts(parts: Iterable[dict[str, str]]) -> str:
    """The parts that differ between runs, with their values (`epochs 5 / 10; precision bf16 /
    unknown`): what a message about runs kept apart names."""
    parts = list(parts)
    names = sorted({name for p in parts for name in p})
    values = {name: sorted({p.get(name, UNKNOWN) for p in parts}) for name in names}
    return "; ".join(f"{name} {' / '.join(v)}" for name, v in values.items() if len(v) > 1)


def profile_of(parts: dict[str, str]) -> str:
    """The study profile whose classifier runs have these sizes, or `custom`."""
    for name, p in PROFILES.items():
        if (parts.get("image_size"), parts.get("epochs"), parts.get("batch_size"),
                parts.get("max_images_per_split")) == (
                str(p.image_size), str(p.classifier_epochs), str(p.classifier_batch_size),
                str(p.max_images_per_split)):
            return name
    return "custom"


@dataclass(frozen=True)
class Scale:
    """At what scale a group of runs was made, for the table's header and legend."""

    key: str
    parts: dict
    seeds: tuple[int, ...]  # the seeds of the finished runs
    runs_per_setting: tuple[int, int]  # fewest and most finished runs of one setting

    @property
    def per_setting(self) -> str:
        """Finished runs per setting: `3`, or `2-3` where settings differ."""
        fewest, most = self.runs_per_setting
        return str(most) if fewest == most else f"{fewest}-{most}"

    @property
    def profile(self) -> str:
        return profile_of(self.parts)

    @property
    def one_seed(self) -> bool:
        """No setting has two finished runs: nothing measures the spread between seeds."""
        return self.runs_per_setting[1] <= 1

    @property
    def comparable_with_paper(self) -> bool:
        """Only the paper profile on the full data (no debug cap) stands beside the paper."""
        return self.profile == PAPER_PROFILE and self.parts.get("max_images_per_split") == "0"

    def line(self) -> str:
        p = self.parts
        cap = p.get("max_images_per_split", "0")
        seeds = ",".join(str(s) for s in self.seeds) or "none"
        text = (f"Scale: profile {self.profile}, {p.get('image_size')} px, "
                f"{p.get('epochs')} epochs, batch {p.get('batch_size')}, lr {p.get('lr')} "
                f"({p.get('lr_scaling')}), pretrained {p.get('pretrained')}, "
                f"seeds {seeds} ({self.per_setting} finished per setting), "
                + ("full data" if cap == "0" else f"at most {cap} images per split (debug cap)")
                + f", r applies to {p.get('real_fraction_scope')} images, "
                + ("kept subset fixed by split_seed, GANs of r < 1 rows learned from it only"
                   if p.get("real_subset") == "fixed" else
                   "kept subset drawn per seed, GANs learned from all real images (the "
                   "authors' way: r < 1 rows mix augmentation with withheld images)")
                + f"; {p.get('precision', UNKNOWN)} precision, world size "
                + f"{p.get('world_size', UNKNOWN)}"
                + f"; data {p.get('dataset_digest')}, code {p.get('code_version', '')[:12]}"
                + f", group {self.key}.")
        if not self.comparable_with_paper:
            text += (" Not comparable with the paper's numbers (the paper: 256 px, 100 epochs, "
                     "batch 16, the full data).")
        return text

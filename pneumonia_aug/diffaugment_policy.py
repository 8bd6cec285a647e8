"""The DiffAugment policy grammar, without torch: the config checks a policy before anything
loads; `training/diffaugment.py` applies it."""

from __future__ import annotations

DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")  # DiffAugment (Zhao et al. 2020)


def parse_policy(policy: str) -> list[str]:
    """`"color,cutout"` -> `["color", "cutout"]`; ValueError naming the valid policies."""
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in names if p not in DIFFAUGMENT_POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {unknown}: use a comma-separated subset "
                         f"of {', '.join(DIFFAUGMENT_POLICIES)} (e.g. 'color,translation,cutout'), "
                         "or '' for none")
    return names

"""The settings grammar of Table 1: `{Original|DCGAN|CGAN}-{r}-{g}`.

- `r` in (0, 1]: fraction of the real NORMAL training images kept (PNEUMONIA stays at 100%
  unless `real_fraction_scope=all`); this is what the authors' code did for Table 1.
- `g` in [0, 1]: fraction of the 4000 generated NORMAL images added.
- `Original` requires `g = 0`, a GAN setting `g > 0`. `1` and `1.0` mean the same; the
  canonical name has at least one decimal (`DCGAN-1.0-0.6`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pneumonia_aug.errors import PneumoniaAugError, SettingError

GANS = ("DCGAN", "CGAN")
ORIGINAL = "Original"
SOURCES = (ORIGINAL, *GANS)

GRAMMAR = (
    "settings are named {Original|DCGAN|CGAN}-{r}-{g}: r in (0, 1] is the fraction of real "
    "NORMAL images kept, g in [0, 1] the fraction of the generated images added; Original "
    "needs g = 0 and a GAN needs g > 0 (examples: Original-1.0-0.0, DCGAN-1.0-0.6, CGAN-0.3-1.0)"
)

# The 12 rows of the paper's Table 1.
PAPER_TABLE1 = (
    "Original-0.3-0.0",
    "Original-1.0-0.0",
    "CGAN-0.3-0.3",
    "CGAN-0.3-0.6",
    "CGAN-0.3-1.0",
    "CGAN-1.0-0.3",
    "CGAN-1.0-0.6",
    "DCGAN-0.3-0.3",
    "DCGAN-0.3-0.6",
    "DCGAN-0.3-1.0",
    "DCGAN-1.0-0.3",
    "DCGAN-1.0-0.6",
)

_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_PATTERN = re.compile(rf"^([A-Za-z]+)-{_NUMBER}-{_NUMBER}$")


def _fmt(x: float) -> str:
    """Shortest decimal with at least one digit after the point: 1 -> '1.0', 0.25 -> '0.25'."""
    text = repr(float(x))
    return text if "e" not in text else f"{x:.6f}".rstrip("0")


@dataclass(frozen=True)
class Setting:
    """One row of the study: where the extra NORMAL images come from and how many."""

    source: str  # "Original", "DCGAN" or "CGAN"
    real_fraction: float  # r
    synthetic_fraction: float  # g

    @property
    def name(self) -> str:
        return f"{self.source}-{_fmt(self.real_fraction)}-{_fmt(self.synthetic_fraction)}"

    @property
    def gan(self) -> str | None:
        """The GAN whose images this setting adds, or None for `Original`."""
        return None if self.source == ORIGINAL else self.source

    def __str__(self) -> str:
        return self.name


def parse_setting(text: str) -> Setting:
    """Parse and validate a setting name; raises `SettingError` quoting the grammar."""
    match = _PATTERN.match(str(text).strip())
    if not match:
        raise SettingError(f"invalid setting {text!r}: {GRAMMAR}")
    source_text, r_text, g_text = match.groups()
    source = next((s for s in SOURCES if s.lower() == source_text.lower()), None)
    if source is None:
        raise SettingError(f"invalid setting {text!r}: unknown source {source_text!r}; {GRAMMAR}")
    r, g = float(r_text), float(g_text)
    if not 0 < r <= 1:
        raise SettingError(f"invalid setting {text!r}: r={r_text} is outside (0, 1]; {GRAMMAR}")
    if not 0 <= g <= 1:
        raise SettingError(f"invalid setting {text!r}: g={g_text} is outside [0, 1]; {GRAMMAR}")
    if source == ORIGINAL and g != 0:
        raise SettingError(f"invalid setting {text!r}: Original adds no generated images; "
                           f"{GRAMMAR}")
    if source != ORIGINAL and g == 0:
        raise SettingError(f"invalid setting {text!r}: a GAN setting needs g > 0; {GRAMMAR}")
    return Setting(source, r, g)


def parse_settings(text: str) -> list[Setting]:
    """A study's settings: `table1` (or ''): the paper's 12 rows; `all`: those plus the
    `-1.0-1.0` rows; or a comma-separated list of setting names. Each parsed once, here."""
    if text in ("", "table1"):
        names = list(PAPER_TABLE1)
    elif text == "all":
        names = [*PAPER_TABLE1, "CGAN-1.0-1.0", "DCGAN-1.0-1.0"]
    else:
        names = [s for s in text.split(",") if s.strip()]
    settings = list(dict.fromkeys(parse_setting(name) for name in names))
    if not settings:
        raise SettingError(f"no setting in {text!r}: {GRAMMAR}")
    return settings


def parse_seeds(text: str) -> list[int]:
    """Seeds as a comma-separated list, each an integer or a range `a-b` (both included):
    `0,1,2`, `0-33`."""
    seeds: list[int] = []
    try:
        for part in (p.strip() for p in str(text).split(",")):
            if not part:
                continue
            first, dash, last = part.partition("-")
            if dash and first:
                if int(last) < int(first):
                    raise ValueError(part)
                seeds += range(int(first), int(last) + 1)
            else:
                seeds.append(int(part))
    except ValueError as exc:
        raise PneumoniaAugError(f"seeds must be comma-separated integers or ranges (0,1,2 or "
                                f"0-33), not {text!r}") from exc
    if not seeds:
        raise PneumoniaAugError("give at least one seed, e.g. seeds=0,1,2")
    if len(set(seeds)) != len(seeds):
        raise PneumoniaAugError(f"seeds {text!r} name a seed twice")
    return seeds

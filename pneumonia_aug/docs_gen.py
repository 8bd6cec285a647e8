"""The parameter tables of docs/ (stages.md, operations.md, serving.md), generated from
`pneumonia_aug/config/`, where every default and help text is written once. No torch, no
MLflow.

    python -m pneumonia_aug.docs_gen           # rewrite the generated tables in docs/*.md
    python -m pneumonia_aug.docs_gen --check   # exit 1 when one of them is stale

Each table sits between `<!-- generated: NAME -->` and `<!-- end generated -->`; the text
around the markers is written by hand and kept.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

from pneumonia_aug.config import (
    PROFILES,
    RELIABILITY_ENV_PREFIX,
    ChampionGate,
    ClassifierConfig,
    CompareConfig,
    GANConfig,
    GenerateConfig,
    QualityConfig,
    Reliability,
    StudyConfig,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"
COMMAND = "python -m pneumonia_aug.docs_gen"
CONFIGS = {"train_classifier": ClassifierConfig, "train_gan": GANConfig,
           "generate": GenerateConfig, "gan_quality": QualityConfig, "compare": CompareConfig,
           "main": StudyConfig}
BLOCK = re.compile(r"(<!-- generated: (\S+) -->\n).*?(<!-- end generated -->)", re.S)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(value) -> str:
    return "`''`" if value == "" else f"`{value}`"


def config_table(config_cls) -> str:
    """One row per field: the `-P` / `--option` name, its default, its help and choices."""
    rows = ["| parameter | option | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(config_cls):
        meaning = f.metadata.get("help", "")
        if f.metadata.get("choices"):
            meaning += f" (one of: {', '.join(f.metadata['choices'])})"
        rows.append(f"| `{f.name}` | `--{f.name.replace('_', '-')}` | {_default(f.default)} "
                    f"| {_cell(meaning)} |")
    return "\n".join(rows)


def profiles_table() -> str:
    names = [f.name for f in dataclasses.fields(next(iter(PROFILES.values())))]
    rows = ["| field | " + " | ".join(f"`{p}`" for p in PROFILES) + " |",
            "|---" * (len(PROFILES) + 1) + "|"]
    for name in names:
        rows.append(f"| `{name}` | " + " | ".join(_cell(getattr(p, name)) for p in
                                                  PROFILES.values()) + " |")
    return "\n".join(rows)


def reliability_table() -> str:
    rows = ["| environment variable | default (s) | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(Reliability):
        rows.append(f"| `{RELIABILITY_ENV_PREFIX}{f.name.upper()}` | {f.default:g} "
                    f"| {_cell(f.metadata['help'])} |")
    return "\n".join(rows)


def champion_table() -> str:
    rows = ["| threshold | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(ChampionGate):
        rows.append(f"| `{f.name}` | {f.default:g} | {_cell(f.metadata['help'])} |")
    return "\n".join(rows)


def tables() -> dict[str, str]:
    out = {name: config_table(cls) for name, cls in CONFIGS.items()}
    out["profiles"] = profiles_table()
    out["reliability"] = reliability_table()
    out["champion"] = champion_table()
    return out


def render(text: str) -> str:
    """`text` with every generated block replaced by its table (unknown names: KeyError)."""
    made = tables()
    return BLOCK.sub(lambda m: f"{m.group(1)}{made[m.group(2)]}\n{m.group(3)}", text)


def stale() -> list[Path]:
    """The pages under docs/ whose generated tables differ from the configs'."""
    return [p for p in sorted(DOCS.glob("*.md")) if render(p.read_text()) != p.read_text()]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        for path in stale():
            print(f"{path} is stale: run `{COMMAND}`", file=sys.stderr)
        return 1 if stale() else 0
    for path in stale():
        path.write_text(render(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

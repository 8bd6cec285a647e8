"""The docs tell the truth about the code: generated tables are fresh, no text speaks of the
place the code was written in."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pneumonia_aug import docs_gen

REPO = Path(__file__).resolve().parents[1]


def test_generated_tables_are_fresh():
    """docs/*.md's parameter tables are what `python -m pneumonia_aug.docs_gen` writes from
    config.py; a default or help text changed without rerunning it fails here."""
    assert docs_gen.stale() == [], f"stale: run `{docs_gen.COMMAND}`"


def test_a_changed_default_makes_the_page_stale(monkeypatch):
    page = (docs_gen.DOCS / "stages.md").read_text()
    assert docs_gen.render(page) == page
    monkeypatch.setitem(docs_gen.CONFIGS, "generate", docs_gen.CompareConfig)
    assert docs_gen.render(page) != page


# Words about the place the code was written in, not about the project, its users and their
# machines. `session` as Python's and pytest's word (`start_new_session`, `scope="session"`)
# is not one of them; the only path outside the clone is the quick start's data copy.
BANNED = [r"\blent\b", r"device tool", r"\$OUT\b", r"\bissues? #?\d+", r"DEVELOPERS\.md",
          r"ENVIRONMENT\.md", r"landing from another branch", r"the device's limits",
          r'(?<!")\bsessions?\b', r"shared/(?!data/chest_xray)"]
THIS = Path(__file__).resolve().relative_to(REPO).as_posix()


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    files = []
    for name in names:
        data = (REPO / name).read_bytes() if (REPO / name).is_file() else b"\0"
        if name != THIS and b"\0" not in data:
            files.append(REPO / name)
    return files


def test_no_text_speaks_of_the_place_it_was_written_in():
    pattern = re.compile("|".join(BANNED), re.IGNORECASE)
    hits = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
            for path in tracked_text_files()
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
            if pattern.search(line)]
    assert not hits, "\n".join(hits)


def test_the_banned_words_are_found():
    pattern = re.compile("|".join(BANNED), re.IGNORECASE)
    for text in ("the lent GPU", "issue 12", "written under $OUT", "see ../shared/docs/X.md",
                 "this session's time"):
        assert pattern.search(text), text
    for text in ('scope="session"', "start_new_session=True", "../shared/data/chest_xray",
                 "a talent", "$OUTPUT"):
        assert not pattern.search(text), text

"""The docs tell the truth about the code: generated tables are fresh."""

from __future__ import annotations

from pneumonia_aug import docs_gen


def test_generated_tables_are_fresh():
    """docs/*.md's parameter tables are what `python -m pneumonia_aug.docs_gen` writes from
    config.py; a default or help text changed without rerunning it fails here."""
    assert docs_gen.stale() == [], f"stale: run `{docs_gen.COMMAND}`"


def test_a_changed_default_makes_the_page_stale(monkeypatch):
    page = (docs_gen.DOCS / "stages.md").read_text()
    assert docs_gen.render(page) == page
    monkeypatch.setitem(docs_gen.CONFIGS, "generate", docs_gen.CompareConfig)
    assert docs_gen.render(page) != page

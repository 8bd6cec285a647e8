"""The docs tell the truth about the code: generated tables are fresh, the benchmarks' device
and estimate sections are what their data renders today, every `pneumonia-aug` command and
option they name exists."""

from __future__ import annotations

import re
from pathlib import Path

from pneumonia_aug import docs_gen, measured
from pneumonia_aug.bench.report import ESTIMATE_COMMAND, render

REPO = Path(__file__).resolve().parents[1]


def test_generated_tables_are_fresh():
    """docs/*.md's parameter tables are what `python -m pneumonia_aug.docs_gen` writes from
    pneumonia_aug/config/; a default or help text changed without rerunning it fails here."""
    assert docs_gen.stale() == [], f"stale: run `{docs_gen.COMMAND}`"


def test_a_changed_default_makes_the_page_stale(monkeypatch):
    page = (docs_gen.DOCS / "stages.md").read_text()
    assert docs_gen.render(page) == page
    monkeypatch.setitem(docs_gen.CONFIGS, "generate", docs_gen.CompareConfig)
    assert docs_gen.render(page) != page


def _sections(text: str) -> dict[str, str]:
    """A Markdown page's `## ` sections, heading -> body (stripped)."""
    parts = [part.partition("\n") for part in text.split("\n## ")[1:]]
    return {heading.strip(): body.strip() for heading, _, body in parts}


def test_the_benchmarks_device_sections_are_rendered_from_the_shipped_records():
    sections = _sections((REPO / "docs" / "benchmarks.md").read_text())
    records = measured.bench_records()
    assert records  # the CPU's at least
    for record in records:
        assert sections[record["device"]] == render(record).strip(), record["device"]


def test_the_estimate_section_is_the_dry_runs_of_today():
    """The dry run's estimate against the recorded runs, as the code estimates now: rewrite it
    with `pneumonia-aug bench estimate` when the estimate or its figures change."""
    from pneumonia_aug.bench import estimates

    compared = estimates.compare_recorded()
    section = _sections((REPO / "docs" / "benchmarks.md").read_text())[estimates.HEADING]
    assert section == estimates.render(compared).strip(), (
        f"docs/benchmarks.md is stale: run `{ESTIMATE_COMMAND}`")
    short = next(c for c in compared if c.run["profile"] == "short")
    assert [stage for stage, *_ in short.rows][-1] == estimates.SPAN
    assert all(estimated > 0 for _, _, estimated in short.rows)


# ---- every `pneumonia-aug` command and option the docs name exists --------------------------

SHELL_ENDS = {"&&", "||", "|", ";", "#", ")", "\\"}


def markdown_code(text: str) -> list[str]:
    """The code of a Markdown text: each fenced block's lines (a trailing `\\` joins the next)
    and each inline code span."""
    pieces = []
    for block in re.findall(r"^ *```[^\n]*\n(.*?)^ *```", text, re.S | re.M):
        pieces += block.replace("\\\n", " ").splitlines()
    rest = re.sub(r"^ *```[^\n]*\n.*?^ *```", "", text, flags=re.S | re.M)
    pieces += [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", rest)]
    return pieces


def command_lines(code: str) -> list[list[str]]:
    """The words after each `pneumonia-aug` (or `python -m pneumonia_aug.cli`) that starts a
    command in `code`, up to the end of that shell command."""
    words = code.replace('"$(', " ").replace("$(", " ").split()
    found = []
    for i, word in enumerate(words):
        starts = word == "pneumonia-aug" or (word == "pneumonia_aug.cli" and i and
                                             words[i - 1] == "-m")
        if starts and not (i and words[i - 1].startswith("-") and words[i - 1] != "-m"):
            args = []
            for arg in words[i + 1:]:
                if arg in SHELL_ENDS or arg.startswith("#"):
                    break
                args.append(arg.strip("\"'),"))
            found.append(args)
    return found


def check_command(args: list[str]) -> list[str]:
    """What `args` names that the click tree lacks (subcommands, then options)."""
    import click

    from pneumonia_aug.cli import main

    command, path, errors = main, ["pneumonia-aug"], []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-"):
            name = arg.split("=", 1)[0]
            options = {o: p for p in command.params if isinstance(p, click.Option)
                       for o in (*p.opts, *p.secondary_opts)}
            if name != "--help" and name not in options:
                errors.append(f"{' '.join(path)} has no option {name}")
            elif (name in options and not options[name].is_flag and "=" not in arg
                  and i + 1 < len(args) and not args[i + 1].startswith("-")):
                i += 1  # its value
        elif isinstance(command, click.Group):
            if arg.isupper() or arg in ("...", "COMMAND"):
                break  # a placeholder: `pneumonia-aug COMMAND --k v`
            names = arg.split("|")
            errors += [f"{' '.join(path)} has no command {n}" for n in names
                       if n not in command.commands]
            if len(names) > 1 or names[0] not in command.commands:
                break
            command = command.commands[arg]
            path.append(arg)
        i += 1
    return errors


def documented_commands() -> list[tuple[str, list[str]]]:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return [(page.relative_to(REPO).as_posix(), args) for page in pages
            for code in markdown_code(page.read_text()) for args in command_lines(code)]


def test_every_documented_command_and_option_exists():
    commands = documented_commands()
    assert len(commands) > 50  # the parser still finds them
    assert any(args[:2] == ["bench", "study"] for _, args in commands)
    errors = [f"{page}: {error}" for page, args in commands for error in check_command(args)]
    assert not errors, "\n".join(errors)


def test_a_wrong_command_or_option_is_caught():
    (args,) = command_lines("pneumonia-aug study --profile quick --no-such-option 3")
    assert check_command(args) == ["pneumonia-aug study has no option --no-such-option"]
    (args,) = command_lines("eval \"$(pneumonia-aug services upp)\" && mlflow ui")
    assert check_command(args) == ["pneumonia-aug services has no command upp"]
    (args,) = command_lines("pneumonia-aug kit prepare|run|export")
    assert check_command(args) == ["pneumonia-aug kit has no command export"]
    assert command_lines("mlflow run . --experiment-name pneumonia-aug -e main") == []
    assert check_command(["bench", "study", "--widths", "1,2", "--no-keep"]) == []
    assert check_command(["bench", "--device"]) == [
        "pneumonia-aug bench has no option --device"]
    text = ("Run `pneumonia-aug data check\n  --data-dir DIR` or\n"
            "```bash\npneumonia-aug bench \\\n  train --threads 1\n```\n")
    assert [command_lines(code) for code in markdown_code(text)] == [
        [["bench", "train", "--threads", "1"]], [["data", "check", "--data-dir", "DIR"]]]

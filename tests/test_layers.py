"""The package's layers run one way (docs/development.md, "Layout"): import-linter checks the
contracts in pyproject.toml (`[tool.importlinter]`) on every module of `pneumonia_aug/`.

Each of the package's top-level modules and packages sits on one floor of the `floors`
contract (exhaustive: a new one must be given a floor); a module imports from its own floor
and the floors below, never from a floor above. Imports inside functions (deferred to keep
start-up fast, or to need torch only when a command runs) are in import-linter's graph like
any other: they are arrows all the same. No two modules import each other, directly or round a
longer loop, and no two packages do (`acyclic_siblings`); only `cli` imports click, only
`tracking` and `serving` import MLflow (`protected`). Starting the CLI as another process
(`python -m pneumonia_aug.cli`, as the kit's steps and the benches do) is a command run, not
an import, and is not an arrow.

Checked here, not by import-linter: that the package's own `__init__` imports nothing of the
package (it is the floors' container, which a layers contract does not place on a floor).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pneumonia_aug"
CONFIG = REPO / "pyproject.toml"
ROOT = "__init__"  # the package's own __init__.py (its version, nothing imported)
LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))")


def contracts() -> dict[str, dict]:
    """The import contracts of pyproject.toml, by name."""
    config = tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]
    return {contract["name"]: contract for contract in config["contracts"]}


def floors() -> list[list[str]]:
    """The floors, highest first: the top-level modules and packages on each."""
    layers = contracts()["floors"]["layers"]
    return [[name.strip() for name in floor.split(":")] for floor in layers]


def lint(root: Path) -> subprocess.CompletedProcess:
    """import-linter on the package under `root`, with the contracts of pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-c", LINT, str(CONFIG)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    done = lint(REPO)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert f"Contracts: {len(contracts())} kept, 0 broken." in done.stdout


def test_the_contracts_catch_an_arrow_up_a_loop_a_stray_module_and_third_parties(tmp_path):
    """Each contract, against a copy of the package with one fault of its kind planted inside
    a function (where an import is easiest to miss)."""
    shutil.copytree(PACKAGE, tmp_path / PACKAGE.name,
                    ignore=shutil.ignore_patterns("__pycache__"))
    plant = {"models/sizes.py": "from pneumonia_aug.study import plan",  # up 5 floors
             "study/graph.py": "from pneumonia_aug.study import plan",  # plan imports graph
             "data/kermany.py": "import click\n    import mlflow.pyfunc"}
    for name, imports in plant.items():
        with open(tmp_path / PACKAGE.name / name, "a") as module:
            module.write(f"\n\ndef _planted():\n    {imports}\n")
    (tmp_path / PACKAGE.name / "stray.py").write_text("")  # on no floor
    done = lint(tmp_path)
    assert done.returncode == 1, done.stdout[-6000:] + done.stderr[-3000:]
    assert f"Contracts: 0 kept, {len(contracts())} broken." in done.stdout
    for found in ("pneumonia_aug.models.sizes -> pneumonia_aug.study.plan", ".graph -> .plan",
                  "pneumonia_aug.data.kermany -> click", "pneumonia_aug.data.kermany -> mlflow",
                  "pneumonia_aug.stray"):
        assert found in done.stdout, found


def test_the_package_itself_imports_nothing_of_it():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    own = [node.lineno for node in ast.walk(tree)
           if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
               PACKAGE.name))
           or isinstance(node, ast.Import) and any(
               alias.name.split(".")[0] == PACKAGE.name for alias in node.names)]
    assert not own, f"pneumonia_aug/__init__.py imports the package at lines {own}"


def render_floors(layers: list[list[str]]) -> str:
    """The floors as docs/development.md shows them: highest first, one a line, the package's
    own `__init__` on the lowest."""
    return "\n".join(", ".join([ROOT] * (i == len(layers) - 1) + names)
                     for i, names in enumerate(layers))


def test_the_development_guide_shows_these_floors():
    text = (REPO / "docs" / "development.md").read_text()
    block = re.search(r"<!-- layers -->\n```text\n(.*?)\n```", text, re.S)
    assert block, "docs/development.md has no <!-- layers --> block"
    assert block.group(1) == render_floors(floors())

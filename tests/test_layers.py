"""The package's layers run one way (docs/development.md, "Layout").

Every module of `pneumonia_aug/` is parsed (no import runs). Each of the package's top-level
modules and packages sits on one floor of `LAYERS`; a module imports from its own floor and the
floors below, never from a floor above. Imports inside functions (deferred to keep start-up
fast, or to need torch only when a command runs) count like any other: they are arrows all the
same. No two modules import each other, directly or round a longer loop, and no two
packages do. Starting the CLI as another process (`python -m pneumonia_aug.cli`, as the kit's
steps and the benches do) is a command run, not an import, and is not an arrow.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pneumonia_aug"
ROOT = "__init__"  # the package's own __init__.py (its version, nothing imported)

# The floors, lowest first: the package's top-level modules and packages on each.
LAYERS = [
    [ROOT, "errors", "contract", "settings", "machine", "logs", "diffaugment_policy",
     "provenance", "reachability", "measured"],
    ["models", "services"],
    ["config", "data", "tracking"],
    ["evaluation", "serving"],
    ["training"],
    ["stages"],
    ["study"],
    ["bench", "kit"],
    ["cli", "docs_gen"],
]
# Third-party packages that only these may import.
ONLY = {"click": {"cli"}, "mlflow": {"tracking", "serving"}}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the module it imports: a module of the package, or a third-party top name
    line: int
    deferred: bool  # inside a function


def module_names(root: Path) -> dict[str, Path]:
    """`pneumonia_aug.study.plan` -> its file, for every module under `root` (packages by
    their `__init__.py`)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _known(name: str, known: dict[str, Path]) -> str:
    """The longest prefix of `name` that is a module of the package."""
    while name not in known and "." in name:
        name = name.rpartition(".")[0]
    return name


def imports(root: Path = PACKAGE) -> list[Import]:
    """Every import of every module under `root`: of the package's own modules (resolved:
    `from pneumonia_aug.study import plan` is the module `pneumonia_aug.study.plan`), and of
    third-party packages (by their top-level name)."""
    known = module_names(root)
    found = []
    for source, path in known.items():
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        for node, deferred in _walk(ast.parse(path.read_text(), str(path)), False):
            found += [Import(source, target, node.lineno, deferred)
                      for target in _targets(node, package, root.name, known)]
    return found


def _walk(node: ast.AST, deferred: bool):
    """Every node below `node`, with whether it sits inside a function."""
    for child in ast.iter_child_nodes(node):
        inner = deferred or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
        yield child, inner
        yield from _walk(child, inner)


def _targets(node: ast.AST, package: str, top: str, known: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
        return [_known(n, known) if n.split(".")[0] == top else n.split(".")[0] for n in names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:  # relative: from the importing module's package, up level - 1
        base = package.split(".")[:len(package.split(".")) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    if module.split(".")[0] != top:
        return [module.split(".")[0]]
    return [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known
            else _known(module, known) for alias in node.names]


def unit(module: str) -> str:
    """The top-level module or package a module belongs to (`study` for
    `pneumonia_aug.study.plan`, ROOT for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def floors(layers: list[list[str]]) -> dict[str, int]:
    return {name: i for i, names in enumerate(layers) for name in names}


def arrows_up(found: list[Import], layers: list[list[str]]) -> list[str]:
    """Each import from a floor to a higher one, as `source:line -> target`."""
    floor = floors(layers)
    return [f"{i.source}:{i.line} -> {i.target} ({unit(i.source)} is on floor "
            f"{floor[unit(i.source)]}, {unit(i.target)} on floor {floor[unit(i.target)]})"
            for i in found if floor[unit(i.target)] > floor[unit(i.source)]]


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node of a directed graph (Tarjan), and
    any node that points at itself: each is a loop of imports."""
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(v: str) -> None:  # recursion depth is at most the number of modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1 or v in graph[v]:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def _own(found: list[Import]) -> list[Import]:
    return [i for i in found if i.target.split(".")[0] == PACKAGE.name]


def test_every_module_sits_on_one_floor():
    declared = [name for names in LAYERS for name in names]
    assert len(declared) == len(set(declared)), "a name on two floors"
    units = {unit(m) for m in module_names(PACKAGE)}
    assert units == set(declared), (f"not on a floor: {sorted(units - set(declared))}; "
                                    f"no such module: {sorted(set(declared) - units)}")


def test_no_import_runs_up_a_floor():
    up = arrows_up(_own(imports()), LAYERS)
    assert not up, "\n".join(up)


def test_no_import_cycle_between_modules():
    edges = {(i.source, i.target) for i in _own(imports()) if i.source != i.target}
    loops = cycles(edges)
    assert not loops, loops


def test_no_two_packages_import_each_other():
    """Sideways on one floor is allowed, one way only: the floor's order is then still a true
    order of its packages."""
    edges = {(unit(i.source), unit(i.target)) for i in _own(imports())
             if unit(i.source) != unit(i.target)}
    assert not cycles(edges), cycles(edges)


def test_click_only_in_the_cli_and_mlflow_only_in_tracking_and_serving():
    wrong = [f"{i.source}:{i.line} imports {i.target}" for i in imports()
             if i.target in ONLY and unit(i.source) not in ONLY[i.target]]
    assert not wrong, "\n".join(wrong)


def test_the_checker_catches_an_arrow_up_and_a_cycle():
    layers = [["low"], ["high"]]
    down = Import("pneumonia_aug.high.a", "pneumonia_aug.low.b", 3, False)
    up = Import("pneumonia_aug.low.b", "pneumonia_aug.high.a", 7, True)
    assert arrows_up([down], layers) == []
    assert arrows_up([down, up], layers) == [
        "pneumonia_aug.low.b:7 -> pneumonia_aug.high.a (low is on floor 0, high on floor 1)"]
    assert cycles({("a", "b"), ("b", "c")}) == []
    assert cycles({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == [["a", "b", "c"]]
    assert cycles({("a", "a")}) == [["a"]]


def test_the_parser_sees_deferred_relative_and_submodule_imports(tmp_path):
    root = tmp_path / "pneumonia_aug"
    for name, text in {
        "__init__.py": "",
        "low/__init__.py": "from pneumonia_aug.low import mod\n",
        "low/mod.py": "import click\nfrom . import other\n",
        "low/other.py": "def f():\n    from ..high.top import g\n    import mlflow.pyfunc\n",
        "high/__init__.py": "",
        "high/top.py": "import pneumonia_aug.low.mod as m\nfrom pneumonia_aug.low import *\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    found = {(i.source, i.target, i.deferred) for i in imports(root)}
    assert found == {
        ("pneumonia_aug.low", "pneumonia_aug.low.mod", False),
        ("pneumonia_aug.low.mod", "click", False),
        ("pneumonia_aug.low.mod", "pneumonia_aug.low.other", False),
        ("pneumonia_aug.low.other", "pneumonia_aug.high.top", True),
        ("pneumonia_aug.low.other", "mlflow", True),
        ("pneumonia_aug.high.top", "pneumonia_aug.low.mod", False),
        ("pneumonia_aug.high.top", "pneumonia_aug.low", False),
    }
    assert len(arrows_up(_own(imports(root)), [[ROOT, "low"], ["high"]])) == 1


def render_layers(layers: list[list[str]]) -> str:
    """The floors as docs/development.md shows them: highest first, one a line."""
    return "\n".join(", ".join(names) for names in reversed(layers))


def test_the_development_guide_shows_these_floors():
    text = (REPO / "docs" / "development.md").read_text()
    block = re.search(r"<!-- layers -->\n```text\n(.*?)\n```", text, re.S)
    assert block, "docs/development.md has no <!-- layers --> block"
    assert block.group(1) == render_layers(LAYERS)

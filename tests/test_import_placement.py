"""Imports say what depends on what (issue 23, item 6): a module's imports sit at its top, so
its first lines name everything it depends on. An import inside a function is allowed only

(a) in an entry-point module kept light on purpose for start-up time (:data:`ENTRY_MODULES`:
    the click command modules, the plugin modules the registry loads, package ``__init__``
    files that export lazily): ``inspect --help`` imports them all, so each command's work is
    imported when the command runs;
(b) of an optional or heavy dependency that a module must not load when it is imported
    (:data:`LAZY_DEPENDENCIES`, by top-level name);
(c) where the import's first line, or the comment line right above it, says
    ``# lazy: <reason>``: the rare case (an import reaching up a layer, one guarded by a
    ``try``); keep those few, and each reason specific.

Each exception says why in one line. Imports under ``if TYPE_CHECKING:`` never run and are
not counted (``test_imports`` reads the packages the same way).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from test_imports import PACKAGES, ROOT, module_name

_LIGHT = "a click command module: each command imports its work when it runs, not at --help"
_DOMAIN = "loaded by the registry at every start: register_domains imports the recipe module"

# module -> why its imports may wait inside functions (one line)
ENTRY_MODULES: dict[str, str] = {
    "inspect_core.cli": "the root command: plugins' commands are loaded when it runs",
    "inspect_core.commands.evaluate": _LIGHT,
    "inspect_core.commands.plugins": _LIGHT,
    "inspect_core.commands.predict": _LIGHT,
    "inspect_core.commands.health": _LIGHT,
    "inspect_core.commands.tune": _LIGHT,
    "inspect_core.commands.train": _LIGHT + " (training needs torch)",
    "inspect_core.commands.train_anomaly": _LIGHT + " (training needs torch)",
    "inspect_db": "the package exports lazily (__getattr__): `import inspect_db` loads no engine",
    "inspect_db.commands": _LIGHT,
    "inspect_db.registry.cli": _LIGHT,
    "inspect_db.reports.cli": _LIGHT,
    "inspect_db.plugin": "loaded by the registry at every start: hooks import their work",
    "inspect_stations.commands": _LIGHT,
    "inspect_stations.plugin": "loaded by the registry at every start: hooks import their work",
    "inspect_review": "the package exports lazily (__getattr__): the page's libraries wait",
    "inspect_review.commands": _LIGHT + " (the page's libraries are an extra)",
    "inspect_review.plugin": "loaded by the registry at every start: hooks import their work",
    "inspect_batch.commands": _LIGHT + " (Dask takes 0.3 s to load)",
    "inspect_batch.plugin": "loaded by the registry at every start: hooks import their work",
    "inspect_plugins.industrial": _DOMAIN,
    "inspect_plugins.aerial": _DOMAIN,
    "inspect_plugins.robotics": _DOMAIN,
}

_TRAIN = "the train extra: only inspect_core.training uses it, and a station has none of it"
_DASK = "Dask's cluster (0.3 s to load), only for `inspect backtest`"

# top-level name -> why an import of it may wait inside a function (one line)
LAZY_DEPENDENCIES: dict[str, str] = {
    "torch": _TRAIN,
    "onnxscript": _TRAIN,
    "albumentations": _TRAIN,
    "onnx": _TRAIN + " (0.7 s to load)",
    "onnxruntime": "ONNX Runtime loads with the first model: --help and `station check` skip it",
    "openvino": "an optional engine, installed only where a model card asks for it",
    "paho": "the stations' mqtt extra: a station without an [mqtt] table runs without it",
    "psycopg": "inspect-db's postgres extra: only for postgresql:// URLs",
    "distributed": _DASK,
    "dask": _DASK,
    "fsspec": "remote reading for a backtest only (60 ms to load)",
    "uvicorn": "the review server, only for `inspect review serve`",
    "starlette": "the review page's framework (review extra): never in a module a station imports",
    "argon2": "the review extra's password hashing: extra.require checks it before it loads",
    "pwd": "POSIX only: not there on Windows",
    "rich": "terminal output only: inspect_core.text also serves the station's log lines",
}

LAZY_MARK = "# lazy:"


@dataclass(frozen=True)
class InnerImport:
    """An import statement inside a function."""

    module: str
    path: Path
    line: int
    top: str  # the top-level name imported ("inspect_core" for a relative import there)
    text: str  # the statement's first line
    above: str  # the line right above it

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.text.strip()}"

    def marked(self) -> bool:
        """Whether the statement, or the comment line right above it, says why it is lazy."""
        for line in (self.text, self.above):
            _, mark, reason = line.partition(LAZY_MARK)
            if mark and len(reason.split()) >= 3:
                return True
        return False


def inner_imports() -> list[InnerImport]:
    """Every import statement inside a function in the six packages."""
    found = []
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            source = path.read_text()
            lines = ["", *source.splitlines()]
            module = module_name(package, folder, path)
            for node in _in_functions(ast.parse(source, str(path)), False):
                if isinstance(node, ast.Import):
                    top = node.names[0].name.partition(".")[0]
                else:
                    top = package if node.level else (node.module or "").partition(".")[0]
                above = lines[node.lineno - 1]
                found.append(
                    InnerImport(
                        module=module,
                        path=path,
                        line=node.lineno,
                        top=top,
                        text=lines[node.lineno],
                        above=above if above.lstrip().startswith("#") else "",
                    )
                )
    return found


def _in_functions(node: ast.AST, inside: bool) -> list[ast.Import | ast.ImportFrom]:
    out: list[ast.Import | ast.ImportFrom] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            if inside:
                out.append(child)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.orelse:
                out += _in_functions(ast.Module(body=[stmt], type_ignores=[]), inside)
        else:
            is_function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            out += _in_functions(child, inside or is_function)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def allowed(imp: InnerImport) -> bool:
    return imp.module in ENTRY_MODULES or imp.top in LAZY_DEPENDENCIES or imp.marked()


def test_imports_sit_at_the_top_of_their_module():
    stray = [i.where() for i in inner_imports() if not allowed(i)]
    assert not stray, (
        "imports inside functions: move each to the top of its module; where it must stay "
        "(a cycle that the layering cannot break, a dependency that must not load with the "
        "module), say why on its line: `# lazy: <reason>`, or add an optional dependency to "
        "LAZY_DEPENDENCIES in tests/test_import_placement.py\n" + "\n".join(stray)
    )


def test_every_entry_module_exists_and_still_needs_its_exception():
    found = inner_imports()
    lazy_in = {i.module for i in found if i.top not in LAZY_DEPENDENCIES and not i.marked()}
    modules = {module_name(p, f, path) for p, f in PACKAGES.items() for path in f.rglob("*.py")}
    unknown = sorted(set(ENTRY_MODULES) - modules)
    assert not unknown, f"ENTRY_MODULES names modules that are not there: {unknown}"
    idle = sorted(set(ENTRY_MODULES) - lazy_in)
    assert not idle, f"these entry modules import nothing inside functions, drop them: {idle}"


def test_every_reason_is_one_line_and_says_something():
    for name, why in {**ENTRY_MODULES, **LAZY_DEPENDENCIES}.items():
        assert "\n" not in why and len(why.split()) >= 5, f"{name}: give a one-line reason"
    assert not set(LAZY_DEPENDENCIES) & set(PACKAGES), "first-party imports move to the top"


def test_the_walk_sees_imports_inside_functions_only():
    tree = ast.parse(
        "import os\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import json\n"
        "def f():\n"
        "    import re\n"
        "    if TYPE_CHECKING:\n"
        "        import csv\n"
        "    class C:\n"
        "        import io\n"
        "async def g():\n"
        "    from . import x\n"
    )
    names = [ast.unparse(n) for n in _in_functions(tree, False)]
    assert names == ["import re", "import io", "from . import x"]


def test_a_lazy_mark_needs_a_reason():
    def imp(text: str, above: str = "") -> InnerImport:
        return InnerImport("m", ROOT / "m.py", 1, "x", text, above)

    assert imp("    import x  # lazy: reaches up to the application").marked()
    assert imp("    import x", "    # lazy: reaches up to the application").marked()
    assert not imp("    import x  # lazy:").marked()
    assert not imp("    import x  # lazy: why").marked()
    assert not imp("    import x").marked()

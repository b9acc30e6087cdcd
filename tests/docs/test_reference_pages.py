"""The site's reference pages are made from the code (docs/gen/docgen.py): the command line page
names every command a user can type, plugins' included; the hook page every hookspec with its
arguments described; the model page every shipped card; the measurements page every section of
bench/README.md; the configuration page what the models give now."""

from __future__ import annotations

import re

import click
import pytest
from site_kit import ROOT, generators

docgen, docgen_models = generators()


def typed_commands(group: click.Group, prefix: str = "inspect") -> list[str]:
    """Every visible command under ``group``, read from click's own tables (not docgen's walk)."""
    out = []
    for name, command in group.commands.items():
        if command.hidden:
            continue
        out.append(f"{prefix} {name}")
        if isinstance(command, click.Group):
            out += typed_commands(command, f"{prefix} {name}")
    return out


@pytest.fixture(scope="module")
def root() -> click.Group:
    return docgen.root_group()


@pytest.fixture(scope="module")
def cli_page(root: click.Group) -> str:
    return docgen.cli_page(root)


def test_the_cli_page_has_every_command_with_its_help(root, cli_page):
    commands = typed_commands(root)
    # the core's commands and those the shipped plugins add through register_commands
    assert {
        "inspect predict",
        "inspect station run",
        "inspect report",
        "inspect review serve",
        "inspect model promote",
        "inspect backtest",
        "inspect demo",
    } <= set(commands)
    headings = re.findall(r"^## `(inspect[^`]*)`", cli_page, re.M)
    assert sorted(headings) == sorted(["inspect", *commands])
    for path in commands:
        section = cli_page.split(f"## `{path}`", 1)[1].split("\n## ", 1)[0]
        assert f"Usage: {path} " in section, f"{path}: its --help is missing"


def test_a_command_a_plugin_adds_is_on_the_page():
    group = click.Group("inspect")

    @group.group("line")
    def line() -> None:
        """Line things."""

    @line.command("stop")
    @click.option("--now", is_flag=True, help="Stop at once.")
    def stop(now: bool) -> None:
        """Stop the line."""

    @line.command("secret", hidden=True)
    def secret() -> None:
        """Not shown."""

    page = docgen.cli_page(group)
    assert "## `inspect line stop` {#inspect-line-stop}" in page
    assert "Usage: inspect line stop [OPTIONS]" in page and "Stop at once." in page
    assert "| [`inspect line stop`](#inspect-line-stop) | Stop the line. |" in page
    assert "secret" not in page


def test_the_hook_page_documents_every_hook_and_argument():
    import inspect as pyinspect

    page = docgen.hooks_page()
    functions = docgen.hook_functions()
    assert len(functions) == 7
    for name, fn in functions.items():
        section = page.split(f"## `{name}` {{#{name}}}", 1)[1].split("\n## ", 1)[0]
        for param in pyinspect.signature(fn).parameters:
            assert f"- **`{param}`**: " in section, f"{name}: {param} undescribed"
        assert "- **returns**: " in section, f"{name}: what it returns is undescribed"
        assert f"def {docgen.typed(name, fn)}: ..." in section
    assert "register_domains(register: RegisterDomain) -> None" in page


def test_a_docstring_becomes_markdown_not_an_indented_code_block():
    doc = (
        "Register things, such as ``x``.\n\n"
        ":param register:\n"
        "    Call ``register(thing)`` once per :class:`~a.b.Thing`:\n"
        "    a name.\n\n"
        "    Second paragraph.\n\n"
        ":returns: Nothing.\n\n"
        "An example::\n\n"
        "    register(1)\n"
        "    register(2)\n\n"
        "The end."
    )
    assert docgen.docstring_markdown(doc) == [
        "Register things, such as `x`.", "",
        "- **`register`**: Call `register(thing)` once per `a.b.Thing`: a name.", "",
        "    Second paragraph.", "",
        "- **returns**: Nothing.", "",
        "An example:", "", "```python", "register(1)", "register(2)", "```", "",
        "The end.", "",
    ]  # fmt: skip


def test_the_model_page_has_every_shipped_card():
    page = docgen_models.models_page(ROOT)
    cards = sorted(ROOT.glob("plugins/inspect_plugins/*/models/*.json"))
    assert len(cards) >= 6
    for card in cards:
        name = f"{card.parent.parent.name} / {card.stem}"
        assert re.search(rf"^\| {re.escape(name)} \|", page, re.M), f"{name} is not in the table"
    assert "| industrial / tile-anomaly | magnetic-tile" in page  # the good-only table
    assert "0.833 (369 images)" in page  # steel's same-distribution mIoU, from its card


def test_the_measurements_page_is_bench_readme():
    bench = (ROOT / "bench/README.md").read_text(encoding="utf-8")
    page = docgen.measurements_page(ROOT)
    titles = re.findall(r"^#+ (.+)$", bench, re.M)
    assert len(titles) > 10
    for title in titles:
        assert re.search(rf"^##+ {re.escape(title)}$", page, re.M), title
    assert page.count("\n# ") == 0 and page.startswith("# Measurements\n")


def test_the_configuration_page_is_what_the_models_give():
    from inspect_core.config.reference import all_sections, render

    assert docgen.configuration_page() == render(all_sections())
    committed = (ROOT / "docs/reference/configuration.md").read_text(encoding="utf-8")
    assert "## Station file" in committed and "## Recipe file" in committed


def test_the_plugin_guide_names_every_hook_with_its_arguments():
    """The hand-written table of docs/model-author/plugins.md (what each hook registers) names
    the hooks hookspecs.py declares, with their arguments (datasette's docs test)."""
    guide = (ROOT / "docs/model-author/plugins.md").read_text(encoding="utf-8")
    table = guide.split("| hook | registers |", 1)[1].split("\n\n", 1)[0]
    written = set(re.findall(r"^\| `(\w+\([^)]*\))` \|", table, re.M))
    specs = {docgen.call(n, fn) for n, fn in docgen.hook_functions().items()}
    assert written == specs

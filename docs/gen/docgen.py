"""The site's reference pages, made from the code when the site is built (``make docs``).

- ``reference/cli.md``: every command of ``inspect`` with its ``--help``, walked from the click
  group ``inspect_core.cli:cli`` after every installed plugin added its commands;
- ``reference/hooks.md``: every hook of ``inspect_core/plugin_api/hookspecs.py``, its signature
  and its docstring;
- ``reference/models.md``: the shipped models, from their cards (``docgen_models``);
- ``reference/configuration.md``: the recipe and station files, from their pydantic models
  (``inspect_core.config.reference``, which also writes the committed copy of that page);
- ``measurements.md``: ``bench/README.md``, the dated measurements, as they are kept there.

``docs/gen/hooks.py`` hands them to mkdocs; ``tests/docs`` reads them from here.
"""

from __future__ import annotations

import inspect as pyinspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import click
from docgen_models import models_page

ROOT = Path(__file__).resolve().parents[2]
HELP_WIDTH = 100


# --- the command line ---------------------------------------------------------------------


def root_group() -> click.Group:
    """``inspect``'s root group with every plugin's commands, as ``inspect`` itself builds it."""
    from inspect_core.cli import cli
    from inspect_core.plugin_api.manager import load_cli_plugins

    load_cli_plugins(cli)
    return cli


def walk(
    command: click.Command, parent: click.Context | None = None, name: str = "inspect"
) -> Iterator[tuple[str, click.Command, click.Context]]:
    """Every visible command under ``command`` (itself first): its full name, the command and
    a context that gives its ``--help`` as the terminal shows it."""
    ctx = click.Context(
        command,
        info_name=name,
        parent=parent,
        terminal_width=HELP_WIDTH,
        max_content_width=HELP_WIDTH,
    )
    yield ctx.command_path, command, ctx
    if isinstance(command, click.Group):
        for sub_name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, ctx, sub_name)


def command_names(group: click.Group | None = None) -> list[str]:
    """``["inspect", "inspect backtest", ..., "inspect station run", ...]``."""
    return [path for path, _, _ in walk(group or root_group())]


def cli_page(group: click.Group | None = None) -> str:
    group = group or root_group()
    out = [
        "# Command line",
        "",
        "Generated from the click group `inspect_core.cli:cli` when the site is built, after "
        "every installed plugin added its commands (`register_commands`): each command's "
        "`--help`, as `inspect COMMAND --help` prints it.",
        "",
        '!!! note "Nothing on PATH?"',
        "    `inspect` lives in the checkout's `.venv`: run `. .venv/bin/activate` first (or "
        "call `.venv/bin/inspect`).",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    entries = list(walk(group))
    for path, command, _ in entries[1:]:
        out.append(f"| [`{path}`](#{anchor(path)}) | {cell(command.get_short_help_str(80))} |")
    out.append("")
    for path, command, ctx in entries:
        out += [f"## `{path}` {{#{anchor(path)}}}", "", "```text", command.get_help(ctx), "```", ""]
    return "\n".join(out)


def anchor(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --- the plugin hooks ---------------------------------------------------------------------


def hook_functions() -> dict[str, Callable[..., object]]:
    """Every hookspec of ``hookspecs.py``, found as pluggy finds them."""
    import pluggy

    from inspect_core.plugin_api import hookspecs

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    return {
        name: getattr(hookspecs, name)
        for name in sorted(dir(hookspecs))
        if pm.parse_hookspec_opts(hookspecs, name) is not None
    }


def call(name: str, fn: Callable[..., object]) -> str:
    """``register_domains(register)``: the hook as a plugin writes its ``def``."""
    return f"{name}({', '.join(pyinspect.signature(fn).parameters)})"


def typed(name: str, fn: Callable[..., object]) -> str:
    """``register_domains(register: RegisterDomain) -> None``, as hookspecs.py writes it."""
    sig = pyinspect.signature(fn)
    params = ", ".join(f"{p.name}: {_annotation(p.annotation)}" for p in sig.parameters.values())
    return f"{name}({params}) -> {_annotation(sig.return_annotation)}"


def _annotation(annotation: object) -> str:
    return annotation if isinstance(annotation, str) else pyinspect.formatannotation(annotation)


ROLE = re.compile(r":(?:class|meth|func|data|attr|mod|exc):`~?([^`]+)`")
FIELD = re.compile(r"^:(param (\w+)|returns?):\s*(.*)$")


def rst_inline(text: str) -> str:
    """``x`` and :class:`~a.b.C` as Markdown code spans."""
    text = ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def docstring_markdown(doc: str) -> list[str]:
    """A hookspec docstring (reST fields ``:param x:`` and ``:returns:``, ``::`` code blocks)
    as Markdown: paragraphs joined, fields as a list, code blocks fenced."""
    out: list[str] = []
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        field = FIELD.match(line)
        if field or not line.strip():
            if field:
                body, i = _indented(lines, i + 1, field.group(3))
                label = f"`{field.group(2)}`" if field.group(2) else "returns"
                out += [f"- **{label}**: " + rst_inline(" ".join(body[0])), ""]
                for para in body[1:]:
                    out += ["    " + rst_inline(" ".join(para)), ""]
                continue
            i += 1
            continue
        para = []
        while i < len(lines) and lines[i].strip() and not FIELD.match(lines[i]):
            para.append(lines[i].strip())
            i += 1
        text = " ".join(para)
        if text.endswith("::"):
            out += [rst_inline(text[:-1]), "", "```python"]
            i, code = _code_block(lines, i)
            out += [*code, "```", ""]
        else:
            out += [rst_inline(text), ""]
    return out


def _indented(lines: list[str], i: int, first: str) -> tuple[list[list[str]], int]:
    """The paragraphs of a field's body: its first line's rest and the indented lines after."""
    paras: list[list[str]] = [[first.strip()] if first.strip() else []]
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
        if lines[i].strip():
            paras[-1].append(lines[i].strip())
        elif paras[-1]:
            paras.append([])
        i += 1
    return [p for p in paras if p], i


def _code_block(lines: list[str], i: int) -> tuple[int, list[str]]:
    """The indented block that follows a ``::`` paragraph, dedented, blank lines around it
    dropped."""
    block: list[str] = []
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
        block.append(lines[i])
        i += 1
    text = list(block)
    while text and not text[0].strip():
        text.pop(0)
    while text and not text[-1].strip():
        text.pop()
    width = min((len(b) - len(b.lstrip()) for b in text if b.strip()), default=0)
    return i, [b[width:] for b in text]


def hooks_page() -> str:
    from inspect_core.plugin_api import hookspecs

    functions = hook_functions()
    out = [
        "# Plugin hooks",
        "",
        "Generated from `inspect_core/plugin_api/hookspecs.py` when the site is built: every "
        "hook a plugin can implement, its arguments and what it may return. How to write a "
        "plugin: [Plugins](../model-author/plugins.md).",
        "",
        "## Hooks",
        "",
        "| hook | registers |",
        "|---|---|",
    ]
    for name, fn in functions.items():
        summary = (pyinspect.getdoc(fn) or "").split("\n\n", 1)[0].replace("\n", " ")
        out.append(f"| [`{call(name, fn)}`](#{name}) | {cell(rst_inline(summary))} |")
    out += ["", "## How plugins are called", ""]
    out += docstring_markdown(pyinspect.getdoc(hookspecs) or "")
    for name, fn in functions.items():
        out += [
            f"## `{name}` {{#{name}}}",
            "",
            "```python",
            f"@hookimpl\ndef {typed(name, fn)}: ...",
        ]
        out += ["```", ""]
        out += docstring_markdown(pyinspect.getdoc(fn) or "")
    return "\n".join(out)


# --- the configuration, the measurements --------------------------------------------------


def configuration_page() -> str:
    from inspect_core.config.reference import all_sections, render

    return render(all_sections())


def measurements_page(root: Path = ROOT) -> str:
    """``bench/README.md`` below a short introduction, its headings one level down."""
    bench = (root / "bench" / "README.md").read_text(encoding="utf-8")
    return "\n".join(
        [
            "# Measurements",
            "",
            "The dated lab notes and benchmark results, as kept in `bench/README.md` beside the "
            "scripts that measured them (`bench/*.py`, `training/*.py`). Each section says when, "
            "on what machine and under what load it was measured.",
            "",
            *headings_down(bench.splitlines()),
            "",
        ]
    )


def headings_down(lines: list[str]) -> list[str]:
    """Markdown headings one level lower (``#`` -> ``##``), fenced code left as it is."""
    out, fenced = [], False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        out.append("#" + line if line.startswith("#") and not fenced else line)
    return out


# the pages made at build time, beside those in docs/ (configuration.md is made in place of the
# committed copy: on_page_markdown in hooks.py)
GENERATED = ("reference/cli.md", "reference/hooks.md", "reference/models.md", "measurements.md")


def generated_pages(root: Path = ROOT) -> dict[str, str]:
    """Site path -> Markdown of every page of :data:`GENERATED`."""
    pages = {
        "reference/cli.md": cli_page(),
        "reference/hooks.md": hooks_page(),
        "reference/models.md": models_page(root),
        "measurements.md": measurements_page(root),
    }
    assert tuple(pages) == GENERATED
    return pages

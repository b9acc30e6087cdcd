"""mkdocs hooks (``hooks:`` in mkdocs.yml): the reference pages are made from the code as the
site is built (``docgen``), so they cannot drift from it.

- ``on_files`` adds the generated pages (command line, plugin hooks, shipped models,
  measurements) to the site;
- ``on_page_markdown`` replaces the committed ``reference/configuration.md`` with what the
  configuration models give now, and the marker ``<!-- generated: model tables -->`` of a page
  with the tables of the shipped models.
"""

from __future__ import annotations

from typing import Any

from docgen import ROOT, configuration_page, generated_pages
from docgen_models import MARKER, model_tables
from mkdocs.structure.files import File, Files


def on_files(files: Files, config: Any) -> Files:
    for src_uri, markdown in generated_pages().items():
        files.append(File.generated(config, src_uri, content=markdown))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if page.file.src_uri == "reference/configuration.md":
        return configuration_page()
    if MARKER in markdown:
        return markdown.replace(MARKER, model_tables(ROOT))
    return markdown

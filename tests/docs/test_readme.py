"""The README is the short way in: at most 200 lines, `inspect`'s venv named in its first lines,
and every link in it leads to a file of the repository or a page of the documentation site
(with the heading an anchor names). Facts it and the site state once are stated alike."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify
from site_kit import ROOT, generators, nav_pages

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*(?:\{#([\w-]+)\})?\s*$", re.M)


def links(markdown: str) -> list[str]:
    return LINK.findall(markdown)


def anchors(markdown: str) -> set[str]:
    """The ids mkdocs gives the headings of a page (toc's slugify, or an explicit ``{#id}``)."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    return {m.group(2) or slugify(m.group(1).replace("`", ""), "-") for m in HEADING.finditer(text)}


def broken(markdown: str, base: Path, site_pages: set[str]) -> list[str]:
    """Each link of ``markdown`` (written in ``base``) that leads nowhere, with why."""
    out = []
    for target in links(markdown):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked here
        path, _, anchor = target.partition("#")
        file = (base / path).resolve() if path else None
        if file is None or not file.is_file():
            out.append(f"{target}: no such file")
            continue
        rel = file.relative_to(ROOT).as_posix()
        if rel.startswith("docs/") and rel.endswith(".md") and rel[5:] not in site_pages:
            out.append(f"{target}: not a page of the site (mkdocs.yml nav)")
        elif anchor and anchor not in anchors(file.read_text(encoding="utf-8")):
            out.append(f"{target}: {rel} has no heading #{anchor}")
    return out


def test_the_readme_is_short_and_says_how_to_reach_inspect():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines: move the detail into docs/"
    assert ". .venv/bin/activate" in "\n".join(lines[:12]), "say how to activate .venv at the top"


def test_every_readme_link_resolves_to_a_file_or_a_site_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(links(readme)) > 20  # the guide to the site is there
    assert broken(readme, ROOT, set(nav_pages())) == []


def test_the_link_check_catches_a_missing_file_page_or_anchor(tmp_path):
    pages = set(nav_pages())
    assert broken("[x](docs/no-such-page.md)", ROOT, pages) == [
        "docs/no-such-page.md: no such file"
    ]
    assert broken("[x](docs/development.md#no-such-heading)", ROOT, pages) == [
        "docs/development.md#no-such-heading: docs/development.md has no heading #no-such-heading"
    ]
    assert broken("[x](docs/gen/hooks.py) [y](https://example.org)", ROOT, pages) == []
    assert broken("[x](docs/development.md#layout)", ROOT, pages - {"development.md"}) == [
        "docs/development.md#layout: not a page of the site (mkdocs.yml nav)"
    ]


def test_every_page_in_docs_is_in_the_navigation():
    """mkdocs --strict fails on a page left out of the nav; this says which one sooner."""
    docgen, _ = generators()
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    nav = nav_pages()
    assert sorted(pages | set(docgen.GENERATED)) == sorted(nav)
    assert len(nav) == len(set(nav)), "a page is in the navigation twice"


@pytest.mark.parametrize("page", sorted(p for p in nav_pages() if (ROOT / "docs" / p).is_file()))
def test_the_links_of_every_written_page_resolve(page):
    """(The pages made at build time are checked by mkdocs --strict, in `make docs`.)"""
    docgen, _ = generators()
    path = ROOT / "docs" / page
    text = path.read_text(encoding="utf-8")
    site = set(nav_pages()) | set(docgen.GENERATED)
    problems = []
    for target in links(text):
        rel, _, anchor = target.partition("#")
        if re.match(r"[a-z]+:", target) or not rel:
            continue
        page_path = (path.parent / rel).resolve()
        site_rel = page_path.relative_to((ROOT / "docs").resolve()).as_posix()
        if site_rel in docgen.GENERATED:
            continue
        if not page_path.is_file():
            problems.append(f"{target}: no such file")
        elif anchor and site_rel.endswith(".md") and site_rel in site:
            if anchor not in anchors(page_path.read_text(encoding="utf-8")):
                problems.append(f"{target}: no heading #{anchor}")
    assert problems == []


def retraining_minutes() -> float:
    """What `make weights` (training/all.sh) takes: each stage's --max-minutes, or for a stage
    without one (``--max-minutes 0``) the training time its shipped card records."""
    script = (ROOT / "training/all.sh").read_text(encoding="utf-8")
    stages = re.search(r"\$\{RECIPES:-([^}]+)\}", script).group(1).split()
    recorded = {}
    for card in ROOT.glob("plugins/inspect_plugins/*/models/*.json"):
        c = json.loads(card.read_text(encoding="utf-8"))
        out = str(c.get("training", {}).get("out", ""))
        recorded[out.removeprefix("runs/")] = c.get("training_seconds", 0) / 60
    total = 0.0
    for stage in stages:
        args = (ROOT / f"training/{stage}.args").read_text(encoding="utf-8")
        budget = float(re.search(r"--max-minutes (\d+)", args).group(1))
        total += budget or recorded[stage]
    return total


def test_the_retraining_time_is_the_stages_budgets_everywhere():
    hours = round(retraining_minutes() / 60)
    assert hours == 10
    said = f"about {hours} hours"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    models = (ROOT / "docs/model-author/models.md").read_text(encoding="utf-8")
    assert said in makefile and f"in {said}" in models
    assert f"add up to {round(retraining_minutes())} minutes" in " ".join(models.split())
    for text in (makefile, models, (ROOT / "README.md").read_text(encoding="utf-8")):
        assert not re.search(r"about [0-9]+ hours", text.replace(said, "")), "a stale figure"

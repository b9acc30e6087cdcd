"""``inspect plugin new``: write an installable domain plugin package.

:func:`scaffold` writes ``inspect-NAME/``: ``pyproject.toml`` with the entry point, the package
``inspect_NAME/`` (the hook implementation, a recipe, a copy of the model and its samples), a
README and a test that uses :mod:`inspect_core.plugin_api.testing`. The files are the templates
below, filled in with the plugin's name.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from inspect_core.errors import InspectError

if TYPE_CHECKING:
    from inspect_core.runtime.recipe import Recipe

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")

# post-processing and rules of a recipe for a model other than the shipped steel one
DEFAULT_CHAIN = """
[[postprocess]]
type = "open"
size = 3

[[postprocess]]
type = "remove_small"
default_px = 20

[[rules]]
type = "min_area"
classes = {defects}
min = 50
decision = "FAIL"

[[rules]]
type = "review_band"
low = 0.5
high = 0.7
"""

# the package's files, relative to its root; {name}: the plugin, {dist}: its distribution name
TEMPLATES = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "inspect-{dist}"
        version = "0.1.0"
        description = "inspect domain plugin: {name}"
        requires-python = ">=3.11"
        dependencies = ["inspect-vision"]

        [project.entry-points."inspect.plugins"]
        {name} = "inspect_{name}"

        [tool.setuptools.packages.find]
        include = ["inspect_{name}*"]

        [tool.setuptools.package-data]
        "*" = ["*.onnx", "*.json", "*.toml", "*.png", "*.jpg"]
        """,
    "inspect_{name}/__init__.py": '''
        """inspect plugin {name}: registers the {name} domain and its recipes."""
        from pathlib import Path

        from inspect_core.plugin_api.hookspecs import hookimpl
        from inspect_core.runtime.recipe import Domain, Recipe

        HERE = Path(__file__).parent


        def preprocess(img):
            """Prepare a uint8 image before the model (same as in training). Identity here."""
            return img


        @hookimpl
        def register_domains(register):
            recipes = [Recipe.from_toml(p, preprocess=preprocess)
                       for p in sorted((HERE / "recipes").glob("*.toml"))]
            register(Domain("{name}", recipes, description="{name} inspection"))
        ''',
    "tests/test_{name}.py": """
        import pytest

        from inspect_core.plugin_api.testing import check_plugin, run_samples


        def test_registers():
            check_plugin("{name}")


        def test_samples_keep_their_verdicts():
            results = run_samples("{name}")
            if not results:
                pytest.skip("no sample images yet: add [[samples]] to recipes/default.toml")
            bad = [r for r in results if not r.ok]
            assert not bad, bad
        """,
    "README.md": """
        # inspect-{dist}

        An [inspect](https://example.invalid/inspect) domain plugin.

        ```
        pip install -e .
        inspect plugins                       # lists {name}
        inspect predict --plugin {name} --recipe default IMAGE.png
        pytest tests
        ```

        Train your own weights and replace `inspect_{name}/models/default.onnx`:

        ```
        inspect train --data MY_DATASET --out runs/{name} --init-from industrial:steel
        cp runs/{name}/model.onnx inspect_{name}/models/default.onnx
        cp runs/{name}/model.json inspect_{name}/models/default.json
        ```
        Then edit `inspect_{name}/recipes/default.toml` (classes, rules, samples).
        """,
}


def _toml(v) -> str:
    """A TOML value (strings, numbers, booleans, lists, inline tables) for the recipe."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return json.dumps(v)


def _tables(key: str, specs: list[dict]) -> str:
    return "".join(
        f"\n[[{key}]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in spec.items()) for spec in specs
    )


def scaffold(name: str, directory: Path, model: Path | None = None) -> Path:
    """Write the plugin package ``NAME`` into ``directory/inspect-NAME`` and return that folder.

    ``model``: its starting weights (default: the shipped steel model, with its samples,
    post-processing and rules)."""
    if not NAME_RE.match(name):
        raise InspectError(
            f"plugin name {name!r}: use 2-40 lowercase letters, digits or _ "
            "starting with a letter (it becomes a Python package name)"
        )
    root = directory / f"inspect-{name.replace('_', '-')}"
    if root.exists():
        raise InspectError(f"{root} already exists; choose another --dir or remove it")
    pkg = root / f"inspect_{name}"
    base = _steel_recipe() if model is None else None
    recipe_toml = _recipe(model or base.model, base, pkg)
    for template, text in TEMPLATES.items():
        path = root / template.format(name=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = text.format(name=name, dist=name.replace("_", "-"))
        path.write_text(textwrap.dedent(text).lstrip())
    (pkg / "recipes").mkdir(exist_ok=True)
    (pkg / "recipes" / "default.toml").write_text(recipe_toml)
    return root


def _steel_recipe() -> Recipe:
    """The shipped steel recipe, the default starting point; an error saying to pass
    ``--model`` when it is not installed."""
    from inspect_core.plugin_api.resolve import find_recipe

    try:
        return find_recipe("industrial", "steel")
    except InspectError as e:
        raise InspectError(
            f"no --model given and the shipped steel model is unavailable ({e}); "
            "pass --model MODEL.onnx"
        ) from e


def _recipe(model: Path, base: Recipe | None, pkg: Path) -> str:
    """Copy ``model`` (and its card) into ``pkg/models`` and, with the steel recipe ``base``,
    its sample images into ``pkg/samples``; returns the text of the plugin's recipe."""
    from inspect_core.runtime.onnx_model import OnnxModel

    defects = OnnxModel(model).classes[1:]
    (pkg / "models").mkdir(parents=True)
    (pkg / "samples").mkdir()
    shutil.copy(model, pkg / "models" / "default.onnx")
    card = model.with_suffix(".json")
    if card.is_file():
        shutil.copy(card, pkg / "models" / "default.json")
    sample_toml = ""
    for s in base.samples if base is not None else []:
        shutil.copy(s.image, pkg / "samples" / s.image.name)
        sample_toml += (
            f'\n[[samples]]\nimage = "../samples/{s.image.name}"\nexpected = "{s.expected}"\n'
        )
    # with the steel model come its samples, so also its post-processing and rules: the
    # samples' expected verdicts hold for exactly that chain
    if base is not None:
        region = base.region_classes if base.region_classes is not None else defects
        chain = _tables("postprocess", base.postprocess) + _tables("rules", base.rules)
    else:
        region, chain = defects, DEFAULT_CHAIN.format(defects=_toml(defects))
    return (
        "# Recipe: which model, how to clean its masks, and which rules make the verdict.\n"
        f'name = "default"\nmodel = "../models/default.onnx"\n'
        f"region_classes = {_toml(region)}\n" + chain + sample_toml
    )

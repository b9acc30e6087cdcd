"""``inspect plugin new``: write an installable domain plugin package."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

from inspect_core.errors import InspectError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")

DEFAULT_CHAIN = """
[[postprocess]]
type = "open"
size = 3

[[postprocess]]
type = "min_area"
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
    if not NAME_RE.match(name):
        raise InspectError(
            f"plugin name {name!r}: use 2-40 lowercase letters, digits or _ "
            "starting with a letter (it becomes a Python package name)"
        )
    root = directory / f"inspect-{name.replace('_', '-')}"
    if root.exists():
        raise InspectError(f"{root} already exists; choose another --dir or remove it")
    pkg = root / f"inspect_{name}"
    samples: list[tuple[Path, str]] = []
    classes: list[str]
    base = None
    if model is None:
        from inspect_core.plugin_api.resolve import find_recipe

        try:
            base = find_recipe("industrial", "steel")
        except InspectError as e:
            raise InspectError(
                f"no --model given and the shipped steel model is unavailable ({e}); "
                "pass --model MODEL.onnx"
            ) from e
        model = base.model
        samples = [(s.image, s.expected) for s in base.samples]
    from inspect_core.runtime.onnx_model import OnnxModel

    classes = OnnxModel(model).classes
    defects = classes[1:]
    (pkg / "models").mkdir(parents=True)
    (pkg / "samples").mkdir()
    (root / "tests").mkdir()
    shutil.copy(model, pkg / "models" / "default.onnx")
    card = model.with_suffix(".json")
    if card.is_file():
        shutil.copy(card, pkg / "models" / "default.json")
    sample_toml = ""
    for img, expected in samples:
        shutil.copy(img, pkg / "samples" / img.name)
        sample_toml += f'\n[[samples]]\nimage = "../samples/{img.name}"\nexpected = "{expected}"\n'
    # with the steel model come its samples, so also its post-processing and rules: the
    # samples' expected verdicts hold for exactly that chain
    if base is not None:
        region = base.region_classes if base.region_classes is not None else defects
        chain = _tables("postprocess", base.postprocess) + _tables("rules", base.rules)
    else:
        region, chain = defects, DEFAULT_CHAIN.format(defects=_toml(defects))
    recipe_toml = (
        "# Recipe: which model, how to clean its masks, and which rules make the verdict.\n"
        f'name = "default"\nmodel = "../models/default.onnx"\n'
        f"region_classes = {_toml(region)}\n" + chain + sample_toml
    )
    files = {
        root / "pyproject.toml": f"""
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "inspect-{name.replace("_", "-")}"
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
        pkg / "__init__.py": f'''
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
        pkg / "recipes" / "default.toml": recipe_toml,
        root / "tests" / f"test_{name}.py": f'''
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
            ''',
        root / "README.md": f"""
            # inspect-{name}

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
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root

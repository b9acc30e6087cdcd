"""``inspect plugin new``: write an installable domain plugin package.

:func:`scaffold` writes ``inspect-NAME/``: ``pyproject.toml`` with the entry point, the package
``inspect_NAME/`` (the hook implementation, a recipe, a copy of the model and its samples), a
README and a test that uses :mod:`inspect_core.plugin_api.testing`. The files are the templates
of :mod:`inspect_core.plugin_api.scaffold_templates`, filled in with the plugin's name.

:func:`scaffold_from_data` does the same for a dataset: it surveys the true masks
(:mod:`~inspect_core.plugin_api.dataset_survey`), sizes the recipe's post-processing and rules
from the smallest defects, picks the shipped model to fine-tune (same channels, trained on
defects; :mod:`~inspect_core.plugin_api.plugin_plan`) and ships a copy of it until the user's
own model is trained with the ``inspect train`` command it returns.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspect_core.errors import InspectError
from inspect_core.plugin_api.dataset_survey import DatasetSurvey, survey_dataset
from inspect_core.plugin_api.manager import candidates
from inspect_core.plugin_api.plugin_plan import (
    ChainPlan,
    StartModel,
    choose_start_model,
    plan_chain,
)
from inspect_core.plugin_api.resolve import find_recipe
from inspect_core.plugin_api.scaffold_templates import (
    DATA_TEMPLATES,
    DEFAULT_CHAIN,
    SAMPLES_MARK,
    STEEL_CHAIN_NOTE,
    TEMPLATES,
)
from inspect_core.runtime.onnx_model import OnnxModel

if TYPE_CHECKING:
    from inspect_core.runtime.recipe import Recipe

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,38}[a-z0-9]$")  # a trailing _ is no package name


@dataclass(frozen=True)
class NewPlugin:
    """What :func:`scaffold_from_data` wrote and found: the package folder, its recipe, the
    dataset survey, the chain sized from it, the model it starts from and the ``inspect
    train`` command to run next."""

    root: Path
    recipe: Path
    survey: DatasetSurvey
    chain: ChainPlan
    start: StartModel
    train_command: str


def _toml(v: object) -> str:
    """A TOML value (strings, numbers, booleans, lists, inline tables) for the recipe."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return json.dumps(v)


def _tables(key: str, specs: list[dict[str, Any]]) -> str:
    return "".join(
        f"\n[[{key}]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in spec.items()) for spec in specs
    )


def _package_root(name: str, directory: Path) -> Path:
    """``directory/inspect-NAME``; an error when the name cannot be a package or the folder
    exists."""
    if not NAME_RE.match(name):
        raise InspectError(
            f"plugin name {name!r}: use 2-40 lowercase letters, digits or _, starting with a "
            "letter and not ending in _ (it becomes a Python package name)"
        )

    taken = sorted(c.name for c in candidates())
    if name in taken:
        raise InspectError(
            f"plugin name {name!r} is taken (an installed plugin, or the core, has it: "
            f"{', '.join(taken)}): two plugins of one name cannot both load; choose another"
        )
    root = directory / f"inspect-{name.replace('_', '-')}"
    if root.exists():
        raise InspectError(f"{root} already exists; choose another --dir or remove it")
    return root


def _write(root: Path, templates: dict[str, str], recipe_toml: str, **fields: str) -> Path:
    """Fill in and write ``templates`` and the recipe under ``root``; returns the recipe."""
    name = fields["name"]
    for template, text in templates.items():
        path = root / template.format(name=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip().format(**fields))
    recipe = root / f"inspect_{name}" / "recipes" / "default.toml"
    recipe.parent.mkdir(exist_ok=True)
    recipe.write_text(recipe_toml)
    return recipe


def scaffold(name: str, directory: Path, model: Path | None = None) -> Path:
    """Write the plugin package ``NAME`` into ``directory/inspect-NAME`` and return that folder.

    ``model``: its starting weights (default: the shipped steel model, with its samples,
    post-processing and rules)."""
    root = _package_root(name, directory)
    pkg = root / f"inspect_{name}"
    base = None
    if model is None:
        base = _steel_recipe()
        model = base.model
    recipe_toml = _recipe(model, base, pkg)
    _write(root, TEMPLATES, recipe_toml, name=name, dist=name.replace("_", "-"))
    return root


def _steel_recipe() -> Recipe:
    """The shipped steel recipe, the default starting point; an error saying to pass
    ``--model`` when it is not installed."""
    try:
        return find_recipe("industrial", "steel")
    except InspectError as e:
        raise InspectError(
            f"no --model given and the shipped steel model is unavailable ({e}); "
            "pass --model MODEL.onnx"
        ) from e


def _copy_model(model: Path, pkg: Path) -> None:
    """``model`` and its card as ``pkg/models/default.onnx`` / ``.json``; an empty samples
    folder. A plugin's model needs its card (it is refused without one)."""
    card = model.with_suffix(".json")
    if not card.is_file():
        raise InspectError(
            f"{model} has no model card ({card.name} beside it), and a plugin's model is refused "
            "without one; inspect train writes model.json beside model.onnx: pass a model "
            "that has its card"
        )
    (pkg / "models").mkdir(parents=True)
    (pkg / "samples").mkdir()
    shutil.copy(model, pkg / "models" / "default.onnx")
    shutil.copy(card, pkg / "models" / "default.json")


def _recipe(model: Path, base: Recipe | None, pkg: Path) -> str:
    """Copy ``model`` (and its card) into ``pkg/models`` and, with the steel recipe ``base``,
    its sample images into ``pkg/samples``; returns the text of the plugin's recipe."""
    defects = OnnxModel(model).classes[1:]
    _copy_model(model, pkg)
    sample_toml = ""
    for s in base.samples if base is not None else []:
        shutil.copy(s.image, pkg / "samples" / s.image.name)
        sample_toml += (
            f"\n[[samples]]\nimage = {_toml('../samples/' + s.image.name)}\n"
            f"expected = {_toml(s.expected)}\n"
        )
    # with the steel model come its samples, so also its post-processing and rules: the
    # samples' expected verdicts hold for exactly that chain
    if base is not None:
        region = base.region_classes if base.region_classes is not None else defects
        chain = STEEL_CHAIN_NOTE + _tables("postprocess", base.postprocess)
        chain += _tables("rules", base.rules)
    else:
        region, chain = defects, DEFAULT_CHAIN.format(defects=_toml(defects))
    return (
        "# Recipe: which model, how to clean its masks, and which rules make the verdict.\n"
        f'name = "default"\nmodel = "../models/default.onnx"\n'
        f"region_classes = {_toml(region)}\n"
        + chain
        + (f"\n{SAMPLES_MARK}\n{sample_toml}" if sample_toml else "")
    )


def scaffold_from_data(
    name: str, directory: Path, data: Path, model: Path | None = None
) -> NewPlugin:
    """Write the plugin package ``NAME`` for the dataset at ``data`` (see the module
    docstring). ``model``: the model to start from instead of the shipped one chosen for the
    dataset's channels."""
    root = _package_root(name, directory)
    survey = survey_dataset(data)
    chain = plan_chain(survey)
    start = choose_start_model(survey.channels, model)
    train = start.train_command(data, f"runs/{name}")
    pkg = root / f"inspect_{name}"
    _copy_model(start.model, pkg)
    recipe = _write(
        root,
        DATA_TEMPLATES,
        _data_recipe(name, data, survey, chain, start, train),
        name=name,
        dist=name.replace("_", "-"),
        data=str(data),
        data_lit=_literal(str(data)),
        classes=_toml(survey.classes),
        start=start.spec,
        start_lit=_literal(start.spec),
        start_sha256=hashlib.sha256(start.model.read_bytes()).hexdigest(),
        train=train,
        survey="\n".join(survey.lines()),
        why_start=start.reason,
    )
    return NewPlugin(root, recipe, survey, chain, start, train)


def _literal(text: str) -> str:
    """``text`` escaped for the inside of a double-quoted Python string and a one-line comment
    of the generated test (a path may hold quotes, backslashes, even a newline)."""
    return json.dumps(text)[1:-1]


def _comment(lines: list[str]) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def _data_recipe(
    name: str,
    data: Path,
    survey: DatasetSurvey,
    chain: ChainPlan,
    start: StartModel,
    train: str,
) -> str:
    """The recipe of a plugin made from a dataset: no class names (it loads with the starting
    model's copy and with the trained model alike), its sizes and their reasons."""
    steps = [{"type": "open", "size": chain.open_size}] if chain.open_size else []
    steps.append({"type": "remove_small", "default_px": chain.remove_small_px})
    rules = [
        {"type": "min_area", "min": chain.min_area_px, "decision": "FAIL"},
        {"type": "review_band", "low": 0.5, "high": 0.7},
    ]
    defects = ", ".join(c.name for c in survey.defects)
    return (
        _comment(
            [
                f"Recipe of the {name} plugin, made by `inspect plugin new {name} --data {data}`.",
                "What the true masks said:",
                *(f"  {line}" for line in survey.lines()),
                "",
                f"models/default.onnx is a copy of {start.spec} until you train your own:",
                f"  {train}",
                "",
                "No class names here, so the recipe loads with either model: every class but",
                f"the first is a defect ({defects}). Once trained, you may name them:",
                'region_classes, per-class remove_small `min_px = { "crack" = 12 }`, rule classes.',
                "Sizes from the masks:",
                *(f"  {r}" for r in chain.reasons),
            ]
        )
        + 'name = "default"\nmodel = "../models/default.onnx"\n'
        + _tables("postprocess", steps)
        + _tables("rules", rules)
        + f"\n{SAMPLES_MARK}\n"
        + _comment(
            [
                f"none yet: after training, `inspect plugin samples {name}:default --data {data}",
                "--write` picks validation images whose verdict from the model equals the one",
                "from their true mask, and writes them here with that verdict.",
            ]
        )
    )

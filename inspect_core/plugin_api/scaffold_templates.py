"""The files ``inspect plugin new`` writes (:mod:`inspect_core.plugin_api.scaffold`), as
``str.format`` templates keyed by their path in the package. Every template takes ``{name}``
(the plugin) and ``{dist}`` (its distribution name); those for a plugin made from a dataset
(``DATA_TEMPLATES``) also take ``{data}``, ``{classes}``, ``{start}``, ``{start_sha256}``,
``{data_lit}`` / ``{start_lit}`` (the same, escaped for a Python string in the test),
``{train}`` (the ``inspect train`` command), ``{survey}`` and ``{why_start}``."""

from __future__ import annotations

# the mark above a recipe's [[samples]]; `inspect plugin samples --write` replaces what follows
SAMPLES_MARK = "# --- samples (written by `inspect plugin samples`) ---"

# post-processing and rules of a recipe for a model of one's own, without a dataset to size them
DEFAULT_CHAIN = """
# No `open`: an opening of size k erases defects narrower than k px (cracks, scratches).
# `inspect plugin new NAME --data DATASET` sizes these steps from your masks.
[[postprocess]]
type = "remove_small"
default_px = 10

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

# above a chain copied from the shipped steel recipe
STEEL_CHAIN_NOTE = """
# The steel recipe's post-processing and rules: its sample images' verdicts hold for them.
# Its `open` (size 3) erases defects narrower than 3 px: remove it for thin defects, or make
# the plugin with `inspect plugin new NAME --data DATASET`, which sizes the chain from your masks.
"""

PYPROJECT = """
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
    """

INIT = '''
    """inspect plugin {name}: registers the {name} domain and its recipes."""
    from pathlib import Path

    from inspect_core.plugin_api.hookspecs import hookimpl
    from inspect_core.runtime.recipe import Domain, Recipe

    HERE = Path(__file__).parent


    # A recipe prepares images with [[preprocess]] tables (resize, clahe: see the README);
    # for anything they cannot do, write a Python function (uint8 image -> uint8 image, the
    # same as in training) and pass it: Recipe.from_toml(p, preprocess=my_function). A recipe
    # may not have both.


    @hookimpl
    def register_domains(register):
        recipes = [Recipe.from_toml(p) for p in sorted((HERE / "recipes").glob("*.toml"))]
        register(Domain("{name}", recipes, description="{name} inspection"))
    '''

TEST_SAMPLES = """

    def test_samples_keep_their_verdicts():
        results = run_samples("{name}")
        if not results:
            pytest.skip("{no_samples}")
        bad = [r for r in results if not r.ok]
        assert not bad, bad
    """

TEMPLATES = {
    "pyproject.toml": PYPROJECT,
    "inspect_{name}/__init__.py": INIT,
    "tests/test_{name}.py": """
    import pytest

    from inspect_core.plugin_api.testing import check_plugin, run_samples


    def test_registers():
        check_plugin("{name}")
    """
    + TEST_SAMPLES.replace(
        "{no_samples}",
        "no sample images yet: add [[samples]] to recipes/default.toml, or pick them from a "
        "dataset: inspect plugin samples {name}:default --data DATASET --write",
    ),
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
    inspect plugin samples {name}:default --data MY_DATASET --write
    ```
    Then edit `inspect_{name}/recipes/default.toml` (classes, rules). `inspect plugin new
    {name} --data MY_DATASET` makes a plugin whose recipe is sized from your masks, and prints
    the training command for it.
    """,
}

DATA_TEMPLATES = {
    "pyproject.toml": PYPROJECT,
    "inspect_{name}/__init__.py": INIT,
    "tests/test_{name}.py": """
    import hashlib
    from pathlib import Path

    import pytest

    import inspect_{name}
    from inspect_core.plugin_api.testing import check_plugin, run_samples
    from inspect_core.runtime.onnx_model import OnnxModel

    MODEL = Path(inspect_{name}.__file__).parent / "models" / "default.onnx"
    # the classes of the dataset the plugin was made for ({data_lit})
    DATASET_CLASSES = {classes}
    # the starting model ({start_lit}) that the package ships until its own is trained
    START_SHA256 = "{start_sha256}"


    def test_registers():
        check_plugin("{name}")


    def test_model_is_trained_for_the_dataset():
        if hashlib.sha256(MODEL.read_bytes()).hexdigest() == START_SHA256:
            pytest.skip("models/default.onnx is still the starting model {start_lit}: "
                        "train your own (README.md)")
        classes = OnnxModel(MODEL).classes
        assert classes == DATASET_CLASSES, (
            f"{{MODEL}} has the classes {{classes}}, the dataset {{DATASET_CLASSES}}: "
            "copy the model trained on the dataset (runs/{name}/model.onnx and model.json)")
    """
    + TEST_SAMPLES.replace(
        "{no_samples}",
        "no sample images yet: after training, run inspect plugin samples {name}:default "
        "--data {data_lit} --write",
    ),
    "README.md": """
    # inspect-{dist}

    An [inspect](https://example.invalid/inspect) domain plugin, made with
    `inspect plugin new {name} --data {data}`. What its masks said:

    ```
    {survey}
    ```

    It ships a copy of the shipped model `{start}` so that it installs and runs. That model
    was chosen to start training from: {why_start}. Its verdicts mean nothing for your parts
    until you train your own:

    ```
    pip install -e .
    {train}
    inspect evaluate --model runs/{name}/model.onnx --data {data} --split val
    cp runs/{name}/model.onnx inspect_{name}/models/default.onnx
    cp runs/{name}/model.json inspect_{name}/models/default.json
    inspect plugin samples {name}:default --data {data} --write
    pytest tests
    inspect predict --plugin {name} --recipe default IMAGE.png
    ```

    `inspect plugin samples` picks validation images whose verdict from the model equals the
    verdict of their true mask, copies them into `inspect_{name}/samples/` and writes them
    with their verdicts into the recipe; `pytest tests` then fails when a later model or rule
    change alters one. The recipe, `inspect_{name}/recipes/default.toml`, explains each of
    its sizes.
    """,
}

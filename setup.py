"""Packages and where they live. The design's folders (plugins/, stations/, db/) are installed
under import names no other distribution uses (a top-level ``db`` or ``plugins`` package would
collide with others of that name); everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

FOLDERS = {
    "inspect_core": "inspect_core",
    "inspect_plugins": "plugins",
    "inspect_stations": "stations",
    "inspect_db": "db",
    "inspect_review": "review",
    "inspect_batch": "batch",
}


def packages() -> list[str]:
    out = []
    for name, folder in FOLDERS.items():
        for pkg in find_namespace_packages(include=[folder, folder + ".*"]):
            if "__pycache__" not in pkg:
                out.append(name + pkg[len(folder) :])
    return out


setup(packages=packages(), package_dir=FOLDERS)

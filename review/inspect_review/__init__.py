"""Operator review in the browser, and reviewed results as training data.

``inspect review serve`` shows the review queue (REVIEW first, then FAIL, newest first) of a
records database; operators confirm or overturn each verdict and label each region from the
keyboard, and every decision is appended to the ``review`` table (the inspection keeps the
model's verdict). ``inspect review export`` writes the reviewed images as a training dataset
(``classes.json``, ``<split>/images``, ``<split>/masks``) that ``inspect train`` reads.
``inspect review user add`` creates the people who may decide (operators) and also export
(engineers).

The page needs the ``review`` extra (Starlette, uvicorn, Jinja2, argon2-cffi,
python-multipart): ``pip install inspect-review``. The export and the station do not.

Modules: ``commands`` (the command line), ``app`` (the application's shared parts),
``server`` (the application put together), ``pages`` (its handlers), ``auth`` (passwords,
sessions, CSRF), ``media`` (recorded images, served safely), ``labels`` (what a keystroke decides
for each region), ``masks`` and ``export`` (the dataset), ``storage`` (reviews and users in SQL).
"""

from __future__ import annotations

__all__ = ["export_dataset", "create_app", "ExportSummary"]

from typing import Any


def __getattr__(name: str) -> Any:  # lazy: the command line loads this package on every run
    if name in ("export_dataset", "ExportSummary"):
        from inspect_review import export

        return getattr(export, name)
    if name == "create_app":
        from inspect_review.server import create_app

        return create_app
    raise AttributeError(name)

"""Errors that speak to the person at the line: what went wrong, where, and what to do."""
from __future__ import annotations


class InspectError(Exception):
    """Base class for every error the tools report to a user (exit code 2 on the CLI)."""

    exit_code = 2


class DataError(InspectError):
    """A dataset folder, image or mask is missing or malformed."""


class ModelError(InspectError):
    """A model file is missing, unreadable or lacks the metadata inspect needs."""


class ExportError(InspectError):
    """An exported ONNX model does not reproduce the torch model."""


class ImageError(InspectError):
    """An input image cannot be used (unreadable, too large, wrong depth...)."""

"""Errors that speak to the person at the line: what went wrong, where, and what to do."""

from __future__ import annotations


class InspectError(Exception):
    """Base class for every error the tools report to a user (exit code 2 on the CLI).

    The command line prints the message on one line, control characters as visible escapes
    (:func:`inspect_core.text.terminal_text`), so a file name in it cannot split it or steer
    the terminal. A subclass whose messages have several lines by design (one problem a line)
    sets ``multiline = True``: its newlines are kept and every extra line is indented.
    """

    exit_code = 2
    multiline = False


class DataError(InspectError):
    """A dataset folder, image or mask is missing or malformed."""


class ModelError(InspectError):
    """A model file is missing, unreadable or lacks the metadata inspect needs."""


class ExportError(InspectError):
    """An exported ONNX model does not reproduce the torch model."""


class ImageError(InspectError):
    """An input image cannot be used (unreadable, too large, wrong depth...)."""

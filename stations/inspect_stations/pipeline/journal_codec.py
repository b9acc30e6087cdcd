"""How the journal stores a result and a file name.

A result (:class:`~inspect_core.types.Inspection`) is stored as its one JSON form
(:meth:`~inspect_core.types.Inspection.to_dict`, numbers exact: :func:`encode`, :func:`decode`);
every field comes back, and a journal in the form before issue 23 still loads. JSON escapes what
is not ASCII, so a name that is not valid UTF-8 survives too.

File names are stored losslessly (:func:`stored`, :func:`loaded`): a name that is valid UTF-8
as text, as it always was; one that is not (``Pr\\xfcfteil.png`` from a Latin-1 writer on an
SMB share, which Python holds as a string with surrogate escapes, and SQLite text cannot hold)
as a BLOB of its bytes, so the file it names can still be found, compared and moved.
"""

from __future__ import annotations

import json

from inspect_core.types import Inspection


def stored(text: str | None) -> str | bytes | None:
    """``text`` as the journal stores it: itself, or a BLOB when it is not valid UTF-8."""
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def loaded(value: str | bytes | None) -> str | None:
    """A value :func:`stored` wrote, as the string it was."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogatepass")
    return value


def encode(insp: Inspection) -> str:
    """The journal's JSON of ``insp``: the one JSON form of an inspection
    (:meth:`Inspection.to_dict`), with every digit kept (``exact``)."""
    return json.dumps(insp.to_dict(exact=True), default=str, separators=(",", ":"))


def decode(payload: str) -> Inspection:
    """An inspection :func:`encode` wrote, or one the journal wrote before issue 23 (its
    verdict nested as ``decision`` and ``hits``): a journal left by the older station loads."""
    return Inspection.from_dict(json.loads(payload))

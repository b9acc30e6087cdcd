"""Safe text for a terminal or a log line: data (file names, station names, error messages)
never steers the terminal, forges a line, or is read as rich markup.

:func:`terminal_text` writes control characters (ESC, newline, carriage return, tab, NUL,
DEL, C1 codes), Unicode line separators and bidirectional overrides as visible escapes
(``\\x1b``, ``\\n``, ``\\u202e``), so ``"a\\nb.png"`` prints as ``a\\nb.png`` on one line and
``"x\\x1b[31mred.png"`` prints those characters instead of turning the terminal red.
:func:`rich_text` / :func:`markup_safe` add what rich needs: a :class:`rich.text.Text` (never
parsed as markup) or a string with ``[`` escaped, so ``[bold red]x.png`` prints as itself and
``a[/b]c.jpg`` cannot raise a MarkupError.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported only by the functions that need it
    from rich.text import Text

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 controls, DEL, C1 controls, line/paragraph separators, bidi embeddings/overrides/isolates
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_KEEP_NL = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _escape(m: re.Match) -> str:
    c = m.group(0)
    if c in _NAMED:
        return _NAMED[c]
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def terminal_text(value: object, *, keep_newlines: bool = False) -> str:
    """``str(value)`` with every character that could steer a terminal or split a log line
    written as a visible escape. ``keep_newlines``: leave ``\\n`` alone (for messages that
    are multi-line by design; the rest is still escaped)."""
    text = "" if value is None else str(value)
    return (_UNSAFE_KEEP_NL if keep_newlines else _UNSAFE).sub(_escape, text)


def markup_safe(value: object) -> str:
    """:func:`terminal_text` with rich markup escaped, for data inside a markup string."""
    from rich.markup import escape

    return escape(terminal_text(value))


def rich_text(value: object, style: str = "") -> Text:
    """A rich :class:`~rich.text.Text` of :func:`terminal_text` (never parsed as markup), for
    table cells and ``console.print``."""
    from rich.text import Text

    return Text(terminal_text(value), style=style)


def indent_continuation(text: str, prefix: str = "  ") -> str:
    """Indent every line after the first that does not already start with white space, so
    that no line of a multi-line message can pass for a line of its own (``error: ...``)."""
    first, *rest = text.split("\n")
    return "\n".join([first, *(r if not r or r[0].isspace() else prefix + r for r in rest)])

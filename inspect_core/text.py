"""Safe text for a terminal or a log line: data (file names, station names, error messages)
never steers the terminal, forges a line, or is read as rich markup.

:func:`terminal_text` writes every control, format and separator character (Unicode categories
Cc, Cf, Zl, Zp: ESC, newline, tab, NUL, DEL, C1 codes, line separators, bidirectional controls,
zero-width spaces, byte-order marks) as a visible escape (``\\x1b``, ``\\n``, ``\\u202e``,
``\\u200b``), so ``"a\\nb.png"`` prints as ``a\\nb.png`` on one line,
``"x\\x1b[31mred.png"`` prints those characters instead of turning the terminal red, and two
names that differ by an invisible character look different. A byte of an undecodable file name
(``\\udcff`` from ``surrogateescape``) prints as that byte, ``\\xff``.
:func:`rich_text` / :func:`markup_safe` add what rich needs: a :class:`rich.text.Text` (never
parsed as markup) or a string with ``[`` escaped, so ``[bold red]x.png`` prints as itself and
``a[/b]c.jpg`` cannot raise a MarkupError.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported only by the functions that need it
    from rich.text import Text

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# controls, format characters (bidi controls, zero-width, BOM), line/paragraph separators,
# lone surrogates (bytes of an undecodable file name)
_ESCAPED = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _escape(c: str) -> str:
    if c in _NAMED:
        return _NAMED[c]
    n = ord(c)
    if 0xDC80 <= n <= 0xDCFF:  # surrogateescape: the byte that could not be decoded
        return f"\\x{n - 0xDC00:02x}"
    if n < 0x100:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}" if n <= 0xFFFF else f"\\U{n:08x}"


def terminal_text(value: object, *, keep_newlines: bool = False) -> str:
    """``str(value)`` with every character that could steer a terminal or split a log line
    written as a visible escape. ``keep_newlines``: leave ``\\n`` alone (for messages that
    are multi-line by design; the rest is still escaped)."""
    text = "" if value is None else str(value)
    if text.isprintable():  # the common case: nothing to escape (newlines are not printable)
        return text
    return "".join(
        _escape(c)
        if unicodedata.category(c) in _ESCAPED and not (keep_newlines and c == "\n")
        else c
        for c in text
    )


def markup_safe(value: object) -> str:
    """:func:`terminal_text` with rich markup escaped, for data inside a markup string."""
    from rich.markup import escape  # lazy: the station's log lines use this module, not rich

    return escape(terminal_text(value))


def rich_text(value: object, style: str = "") -> Text:
    """A rich :class:`~rich.text.Text` of :func:`terminal_text` (never parsed as markup), for
    table cells and ``console.print``."""
    from rich.text import Text  # lazy: the station's log lines use this module, not rich

    return Text(terminal_text(value), style=style)


def indent_continuation(text: str, prefix: str = "  ") -> str:
    """Indent every line after the first that does not already start with white space, so
    that no line of a multi-line message can pass for a line of its own (``error: ...``)."""
    first, *rest = text.split("\n")
    return "\n".join([first, *(r if not r or r[0].isspace() else prefix + r for r in rest)])

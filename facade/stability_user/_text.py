"""Text from outside (organization names and ids, the API's and the services' messages) as we
show it: on a terminal or a log line (``printable``), and in a CSV cell (``csv_cell``).

A name is the API's, and so whoever named the organization's: it may hold an escape sequence
that moves the cursor or sets a terminal's title, a newline that starts a line (a table row, a
log line) of its own, or a formula a spreadsheet runs. Every command that prints such text, and
every notice ``watch`` sends, passes it through here. Pure, standard library only, nothing
loaded: cheap for any command to import.
"""

from __future__ import annotations

__all__ = ["csv_cell", "printable"]

# Characters that reorder what a terminal shows (Unicode's bidirectional formatting ones), and
# the line and paragraph separators some terminals and editors break a line at.
_INVISIBLE_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# What a spreadsheet reads as the start of a formula (OWASP's list for CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _unsafe(character: str) -> bool:
    code = ord(character)
    return (
        code < 0x20
        or 0x7F <= code < 0xA0
        or 0xD800 <= code < 0xE000  # a lone surrogate: no stream can encode it
        or character in _INVISIBLE_CONTROLS
    )


def _escaped(character: str) -> str:
    if character in _NAMED:
        return _NAMED[character]
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` safe on a terminal or a log line: control characters (C0, DEL, C1), the
    bidirectional overrides, the line separators and lone surrogates shown escaped
    (``\\x1b``, ``\\n``, ``\\u202e``, ``\\ud800``), so that no name moves the cursor, sets
    a title, starts a line (or forges a log line) or stops a stream that cannot encode it."""
    if text.isprintable():  # the usual name: nothing to look at twice
        return text
    return "".join(_escaped(c) if _unsafe(c) else c for c in text)


def csv_cell(value: object) -> object:
    """``value`` for a CSV cell a spreadsheet may open: a number as it is (it stays a number,
    negative ones too), ``None`` empty, a bool ``true`` or ``false``; text ``printable`` and,
    when it begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, after a ``'``,
    so that no spreadsheet reads it as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(_FORMULA_STARTS):
        text = "'" + text
    return printable(text)

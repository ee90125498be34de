"""The values options take: pure converters that raise ``ValueError`` with the message to show.

``_parser.as_type`` makes each an argparse type; ``status``'s quick reading of its arguments
calls them directly, without argparse.
"""

from __future__ import annotations

__all__ = ["FIELDS", "non_negative_seconds", "seconds", "template"]

# What a ``status --format`` template may name.
FIELDS = ("credits", "organization", "age", "stale")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def seconds(text: str) -> float:
    """A positive, finite number of seconds (``--timeout``, ``--interval``)."""
    value = _number(text)
    if not (0 < value < float("inf")):
        raise ValueError(f"must be a positive number of seconds, not {text!r}")
    return value


def non_negative_seconds(text: str) -> float:
    """Zero or a positive, finite number of seconds (``--max-age``)."""
    value = _number(text)
    if not (0 <= value < float("inf")):
        raise ValueError(f"must be 0 or a positive number of seconds, not {text!r}")
    return value


def template(text: str) -> str:
    """A one-line ``str.format`` template naming only ``FIELDS``, each with a spec that fits.

    Attribute and index access (``{credits.real}``, ``{credits[0]}``), positional fields and
    nested fields are refused: the template is the user's, but what it can reach is ours.
    """
    if "\n" in text or "\r" in text:
        raise ValueError("must be one line")
    import string

    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as err:
        raise ValueError(f"{err} in {text!r}") from err
    for _, field, spec, _ in parts:
        if field is None:
            continue
        if field not in FIELDS:
            names = ", ".join("{" + name + "}" for name in FIELDS)
            raise ValueError(f"{{{field}}} is not a field: use {names}")
        if spec and "{" in spec:
            raise ValueError(f"a field inside {{{field}:{spec}}} is not allowed")
    sample = {"credits": 0.0, "organization": "", "age": "", "stale": ""}
    try:  # a spec that does not fit the field's value, e.g. {credits:d}
        text.format_map(sample)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{err} in {text!r}") from err
    return text

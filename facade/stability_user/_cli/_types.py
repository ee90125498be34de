"""The values options take: pure converters that raise ``ValueError`` with the message to show.

``_arguments.as_type`` makes each an argparse type; ``status``'s quick reading of its arguments
calls them directly, without argparse.
"""

from __future__ import annotations

from .._constants import MAX_SECONDS, MIN_REFRESH_INTERVAL

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import date as date_type

__all__ = [
    "FIELDS",
    "MAX_DURATION",
    "CallsField",
    "MIN_INTERVAL",
    "credits",
    "date",
    "days",
    "duration",
    "interval_duration",
    "label",
    "non_negative_seconds",
    "percent",
    "port",
    "refresh_interval",
    "seconds",
    "service",
    "shard",
    "template",
    "totals",
]

# What a ``status --format`` template may name; ``{calls:NAME}`` takes a service's name.
FIELDS = ("credits", "organization", "age", "stale", "runway", "calls")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def seconds(text: str) -> float:
    """A positive number of seconds up to a day (``--timeout``)."""
    value = _number(text)
    if not (0 < value <= MAX_SECONDS):
        raise ValueError(
            f"must be a positive number of seconds up to {MAX_SECONDS:g} (a day), not {text!r}"
        )
    return value


def refresh_interval(text: str) -> float:
    """Seconds between refreshes (``exporter --interval``): ``seconds``, and at least a second."""
    from .._values import INTERVAL_RULE

    value = seconds(text)
    if value < MIN_REFRESH_INTERVAL:
        raise ValueError(f"must be {INTERVAL_RULE}, not {text!r}")
    return value


# The longest span `watch` takes (--within, --repeat, --unreachable-after): four weeks.
MAX_DURATION = 28 * 86400.0
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def duration(text: str) -> float:
    """A span such as ``90s``, ``30m``, ``6h``, ``1d``, ``2w`` or plain seconds, positive and at
    most four weeks; in seconds."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    value = _number(number) * _UNITS[unit] if number.strip() == number else float("nan")
    if not (0 < value <= MAX_DURATION):
        raise ValueError(
            f"must be a duration such as 90s, 30m, 6h or 1d, positive and at most 4w, not {text!r}"
        )
    return value


# The shortest interval ``watch --every`` takes: a cycle a second at most.
MIN_INTERVAL = 1.0


def interval_duration(text: str) -> float:
    """A duration that is also an interval (``watch --every``): from a second to a day."""
    value = duration(text)
    if not MIN_INTERVAL <= value <= MAX_SECONDS:
        raise ValueError(
            f"must be a duration from 1s to 1d (a cycle a second at most), not {text!r}"
        )
    return value


def percent(text: str) -> float:
    """A share from 0 to 100 percent, ``5`` or ``5%`` (``watch --margin``); as a fraction."""
    value = _number(text.removesuffix("%"))
    if not 0 <= value <= 100:
        raise ValueError(f"must be a percentage from 0 to 100, such as 5 or 5%, not {text!r}")
    return value / 100


def days(text: str) -> float:
    """A positive, finite number of days (``--runway-below``)."""
    value = _number(text)
    if not (0 < value < float("inf")):
        raise ValueError(f"must be a positive number of days, not {text!r}")
    return value


def non_negative_seconds(text: str) -> float:
    """Zero or a positive, finite number of seconds (``--max-age``)."""
    value = _number(text)
    if not (0 <= value < float("inf")):
        raise ValueError(f"must be 0 or a positive number of seconds, not {text!r}")
    return value


def credits(text: str) -> float:
    """A number of credits (``--min-credits``): the rule ``require_credits()`` applies."""
    from .._credits import check_credits
    from .._exceptions import ConfigurationError

    try:
        return check_credits(_number(text))
    except ConfigurationError:
        raise ValueError(f"must be a finite number of credits >= 0, not {text!r}") from None


def service(text: str) -> str:
    """A service of the price catalogue (``ultra``, or an endpoint's path): ``--as``,
    ``{calls:NAME}``. Loads the prices."""
    from .._exceptions import ConfigurationError, StabilityError
    from ..prices import price

    try:
        price(text)
    except ConfigurationError as error:
        raise ValueError(error.cli_message or str(error)) from None
    except StabilityError as error:  # a catalogue that cannot be read: said, not a traceback
        raise ValueError(str(error)) from None
    return text


class CallsField:
    """``status --format``'s ``{calls:NAME}``: how many calls of NAME the credits pay for
    (``{calls:ultra}``; ``{calls:ultra:>3}`` formats the number). The prices load only when a
    template names it."""

    __slots__ = ("credits",)

    def __init__(self, credits: float) -> None:
        self.credits = credits

    def __format__(self, spec: str) -> str:
        name, _, number = spec.partition(":")  # template() has checked both
        from ..prices import calls_for

        return format(calls_for(self.credits, service(name)), number)


def label(text: str) -> str:
    """A job's label (``measure --label``, ``jobs --label``): the ledger's rule."""
    from .._job import check_label

    try:
        return str(check_label(text))
    except ValueError:  # ConfigurationError
        raise ValueError(
            f"must be 1 to 64 of A-Z a-z 0-9 _ . : / - (such as client/acme), not {text!r}"
        ) from None


def date(text: str) -> date_type:
    """A day, ``YYYY-MM-DD`` (``jobs --since``, ``--until``)."""
    from datetime import date as day

    try:
        if len(text) != 10 or text[4] != "-" or text[7] != "-":
            raise ValueError(text)
        return day.fromisoformat(text)
    except ValueError:
        raise ValueError(f"must be a date such as 2026-12-01, not {text!r}") from None


def totals(text: str) -> str:
    """What ``jobs --by`` totals by: ``label``, ``month`` or ``label,month``."""
    spelled = text.replace(" ", "")
    if spelled not in {"label", "month", "label,month", "month,label"}:
        raise ValueError(f"must be label, month or label,month, not {text!r}")
    return "label,month" if "," in spelled else spelled  # the columns' order


def port(text: str) -> int:
    """A TCP port to listen on: 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise ValueError(f"must be a port from 0 (any free one) to 65535, not {text!r}")
    return value


def shard(text: str) -> tuple[int, int]:
    """``K/N``: this exporter is shard K (from 0) of N (1 to 1024)."""
    index, _, count = text.partition("/")
    try:
        k, n = int(index), int(count)
    except ValueError:
        k = n = -1
    if not (1 <= n <= 1024 and 0 <= k < n):
        raise ValueError(f"must be K/N with 0 <= K < N <= 1024, such as 0/2, not {text!r}")
    return k, n


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
            names = ", ".join("{" + name + "}" for name in FIELDS if name != "calls")
            raise ValueError(f"{{{field}}} is not a field: use {names}, {{calls:NAME}}")
        if spec and "{" in spec:
            raise ValueError(f"a field inside {{{field}:{spec}}} is not allowed")
        if field == "calls":
            name = (spec or "").partition(":")[0]
            if not name:
                raise ValueError("{calls} names a service: {calls:ultra}")
            service(name)
    sample = {
        "credits": 0.0,
        "organization": "",
        "age": "",
        "stale": "",
        "runway": "",
        "calls": CallsField(0.0),
    }
    try:  # a spec that does not fit the field's value, e.g. {credits:d}
        text.format_map(sample)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{err} in {text!r}") from err
    return text

"""Your own rates: ``STABILITY_PRICES=FILE``, a TOML file whose ``[prices]`` table gives
``name = credits`` over the catalogue's (negotiated rates, a price that moved before a release).

Read when a price is asked for, again only when the file changed. Anything wrong with it (missing,
unreadable, not TOML, a name the catalogue does not have, a price that is not a number from
``MIN_RATE`` to ``MAX_RATE``) is a ``ConfigurationError`` naming the file: a rate silently
ignored would make every estimate wrong.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection, Mapping

from .._constants import PRICES_ENV
from .._exceptions import ConfigurationError
from .._files import NotRegularFileError, TooLargeError, read_regular_file

__all__ = ["Overrides", "read_overrides"]

# The range of a rate: a price below a ten-thousandth of a credit or above a million credits is
# a mistake (1e-300 and 1e308 made every estimate and count of calls meaningless).
MIN_RATE = 0.0001
MAX_RATE = 1_000_000

# The most of a rates file read: a FIFO or /dev/zero named by mistake is refused, not read.
MAX_FILE_BYTES = 1024 * 1024

# The file's path and its rates.
Overrides = tuple[str, Mapping[str, float]]

_cache: dict[tuple[str, int, int, int], Mapping[str, float]] = {}


def read_overrides(
    names: Collection[str],
    closest: Callable[[str], str],
    environ: Mapping[str, str] = os.environ,
) -> Overrides | None:
    """The rates of ``STABILITY_PRICES`` (``None`` when unset or empty), each checked against
    the catalogue's ``names``; ``closest(name)`` says what an unknown name may have meant."""
    path = environ.get(PRICES_ENV) or ""
    if not path:
        return None
    try:
        status = os.stat(path)
        stamp = (path, status.st_mtime_ns, status.st_size, status.st_ino)
        if stamp not in _cache:
            raw = read_regular_file(path, MAX_FILE_BYTES)
            _cache.clear()  # one file at a time is in use
            _cache[stamp] = _rates(path, raw, names, closest)
        return path, _cache[stamp]
    except (NotRegularFileError, TooLargeError) as error:  # their message names the path
        raise _error(path, str(error).removeprefix(f"{path} ")) from None
    except OSError as error:
        raise _error(path, f"cannot be read: {error.strerror or error}") from None


def _error(path: str, problem: str) -> ConfigurationError:
    end = "" if problem.endswith("?") else "."
    return ConfigurationError(f"{PRICES_ENV}={path}: {problem}{end}")


def _rates(
    path: str, raw: bytes, names: Collection[str], closest: Callable[[str], str]
) -> Mapping[str, float]:
    import tomllib  # here: only a run with overrides reads TOML

    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise _error(path, f"is not TOML ({error})") from None
    extra = sorted(set(document) - {"prices"})
    if extra:
        raise _error(path, f"holds {', '.join(extra)}: only a [prices] table of name = credits")
    table = document.get("prices")
    if not isinstance(table, dict):
        raise _error(path, "has no [prices] table of name = credits")
    rates: dict[str, float] = {}
    for name, value in table.items():
        if name not in names:
            raise _error(path, f"names no service {name!r}{closest(name)}")
        try:
            credits = float(value) if isinstance(value, int | float) else math.nan
        except OverflowError:  # an integer beyond any float
            credits = math.inf
        if isinstance(value, bool) or not (MIN_RATE <= credits <= MAX_RATE):
            raise _error(
                path,
                f"{name} = {value!r}: a price must be a number of credits from {MIN_RATE} to "
                f"{MAX_RATE:,}",
            )
        rates[name] = credits
    return rates

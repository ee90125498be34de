"""The catalogue: the data file ``catalogue.json`` beside this module, written by ``make
generate`` from the Credits sections of Stability's v2beta document (never by hand), loaded once
per process, and the prices it gives by a service's name or its endpoint's path.

A data file that is missing or unreadable (a broken install) is a ``StabilityError`` naming it,
not a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .._exceptions import ConfigurationError, StabilityError
from ._overrides import read_overrides
from ._records import Catalogue, Document, Formula, Price, Unpriced

__all__ = [
    "CATALOGUE_FILE",
    "MAX_PARAMETER",
    "catalogue",
    "catalogue_price",
    "closest",
    "lookup",
    "models_of",
]

CATALOGUE_FILE = os.path.join(os.path.dirname(__file__), "catalogue.json")
MAX_PARAMETER = 1_000_000
"""The largest value a formula's parameter takes here (``steps``): far beyond any the API
accepts."""


class _Entry:
    """One priced endpoint and model, as the data file holds it."""

    __slots__ = ("credits", "default_model", "formula", "method", "model", "name", "path", "stated")

    def __init__(self, raw: Mapping[str, object]) -> None:
        formula = raw["formula"]
        self.name = str(raw["name"])
        self.method = str(raw["method"])
        self.path = str(raw["path"])
        self.model = None if raw["model"] is None else str(raw["model"])
        self.default_model = bool(raw["default_model"])
        self.credits = float(raw["credits"])  # type: ignore[arg-type]
        self.stated = str(raw["stated"])
        self.formula = (
            None
            if formula is None
            else Formula(
                float(formula["base"]),  # type: ignore[index]
                float(formula["rate"]),  # type: ignore[index]
                str(formula["parameter"]),  # type: ignore[index]
                int(formula["default"]),  # type: ignore[index]
            )
        )


class _Data:
    """The data file, indexed."""

    __slots__ = ("by_name", "by_path", "document", "entries", "not_priced")

    def __init__(self, raw: Mapping[str, object]) -> None:
        document: Mapping[str, object] = raw["document"]  # type: ignore[assignment]
        self.document = Document(
            str(document["file"]),
            None if document["url"] is None else str(document["url"]),
            None if document["copied"] is None else str(document["copied"]),
            str(document["sha256"]),
        )
        self.entries = tuple(_Entry(entry) for entry in raw["prices"])  # type: ignore[attr-defined]
        self.not_priced = tuple(
            Unpriced(str(item["method"]), str(item["path"]), str(item["reason"]))
            for item in raw["not_priced"]  # type: ignore[attr-defined]
        )
        self.by_name: dict[str, list[_Entry]] = {}
        self.by_path: dict[str, list[_Entry]] = {}
        for entry in self.entries:
            self.by_name.setdefault(entry.name, []).append(entry)
            self.by_path.setdefault(entry.path, []).append(entry)


_loaded: list[_Data] = []


def _data() -> _Data:
    if _loaded:
        return _loaded[0]
    import json  # here: a prompt's status that never asks for a price never pays for it

    try:
        with open(CATALOGUE_FILE, "rb") as file:
            data = _Data(json.loads(file.read()))
    except OSError as error:
        problem = error.strerror or str(error)
        raise _broken(problem) from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise _broken(f"{type(error).__name__}: {error}") from None
    _loaded.append(data)
    return data


def _broken(problem: str) -> StabilityError:
    return StabilityError(
        f"The price catalogue {CATALOGUE_FILE} cannot be read ({problem}): "
        "reinstall stability-user."
    )


def closest(name: str, *, paths: bool = True) -> str:
    """What ``name`` may have meant, as the end of an error's sentence (among the services'
    names only when ``paths`` is false: a rate of your own is given by name)."""
    import difflib

    data = _data()
    if not paths and name in data.by_path:
        return ": a rate is given by its service's name, not by an endpoint's path"
    known = [*data.by_name, *data.by_path] if paths else list(data.by_name)
    near = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if near:
        return f": did you mean {' or '.join(near)}?"
    return f"; the services are {', '.join(data.by_name)}"


def _entry(name: str, model: object) -> _Entry:
    """The entry ``name`` (a service's name, or an endpoint's path with ``model``) names."""
    if not isinstance(name, str):
        raise ConfigurationError(f"A service is named by a str, not {type(name).__name__}.")
    if model is not None and not isinstance(model, str):
        raise ConfigurationError(f"model must be a str, not {type(model).__name__}.")
    data = _data()
    entries = data.by_path.get(name) if name.startswith("/") else data.by_name.get(name)
    if not entries:
        raise ConfigurationError(f"Unknown service {name!r}{closest(name)}")
    if not name.startswith("/"):
        entry = entries[0]
        if model is not None and model != entry.model:
            raise ConfigurationError(
                f"{name} is {'model ' + entry.model if entry.model else 'priced without a model'}"
                f", not {model!r}."
            )
        return entry
    models = ", ".join(str(entry.model) for entry in entries)
    if model is None:
        chosen = [entry for entry in entries if entry.default_model] or (
            entries if len(entries) == 1 else []
        )
        if not chosen:
            raise ConfigurationError(f"{name} is priced by model: give model= one of {models}.")
        return chosen[0]
    for entry in entries:
        if entry.model == model:
            return entry
    raise ConfigurationError(f"{name} has no price for model {model!r}: its models are {models}.")


def _parameter_value(entry: _Entry, parameters: Mapping[str, object]) -> int | None:
    """The value of the entry's formula parameter (its default unless given); every other
    parameter is refused."""
    formula = entry.formula
    accepted = {formula.parameter} if formula is not None else set()
    unknown = sorted(set(parameters) - accepted)
    if unknown:
        takes = f"takes {formula.parameter}" if formula is not None else "takes no parameters"
        raise ConfigurationError(f"{entry.name} {takes}, not {', '.join(unknown)}.")
    if formula is None:
        return None
    value = parameters.get(formula.parameter, formula.default)
    if isinstance(value, bool) or not isinstance(value, int) or not (1 <= value <= MAX_PARAMETER):
        raise ConfigurationError(
            f"{formula.parameter} must be a whole number from 1 to {MAX_PARAMETER:,}, "
            f"not {value!r}."
        )
    return value


def _evaluate(formula: Formula, value: int) -> float:
    """``base + rate * value``, exactly as the document writes it (17 + 0.06 * 100 is 23)."""
    from decimal import Decimal

    return float(Decimal(repr(formula.base)) + Decimal(repr(formula.rate)) * value)


def _price(entry: _Entry, value: int | None, rates: Mapping[str, float], source: str) -> Price:
    document = _data().document.file
    if entry.name in rates:
        return Price(
            entry.name,
            rates[entry.name],
            entry.method,
            entry.path,
            entry.model,
            None,
            None,
            source,
            entry.stated,
            overridden=True,
        )
    credits = entry.credits
    if entry.formula is not None and value is not None:
        credits = _evaluate(entry.formula, value)
    return Price(
        entry.name,
        credits,
        entry.method,
        entry.path,
        entry.model,
        entry.formula,
        value,
        document,
        entry.stated,
    )


def _overrides() -> tuple[str, Mapping[str, float]]:
    found = read_overrides(_data().by_name, lambda name: closest(name, paths=False))
    return ("", {}) if found is None else found


def lookup(name: str, parameters: Mapping[str, object]) -> Price:
    """The price of ``name`` (a service's name or an endpoint's path) at ``parameters``
    (``model`` for a path, the formula's parameter), with ``STABILITY_PRICES`` applied."""
    given = dict(parameters)
    entry = _entry(name, given.pop("model", None))
    value = _parameter_value(entry, given)
    source, rates = _overrides()
    return _price(entry, value, rates, source)


def models_of(path: str) -> tuple[str, ...]:
    """The models the catalogue prices for ``path`` (none when its price depends on none)."""
    return tuple(e.model for e in _data().by_path.get(path, ()) if e.model is not None)


def catalogue_price(path: str, model: str | None, parameters: Mapping[str, object]) -> Price:
    """The price Stability's document states for a call of ``path`` with ``model`` (its default
    when ``None``): what the stand-in charges. ``STABILITY_PRICES`` does not apply."""
    entry = _entry(path, model)
    return _price(entry, _parameter_value(entry, parameters), {}, "")


def catalogue(*, overrides: bool = True) -> Catalogue:
    """Every price at the default parameters, with ``STABILITY_PRICES`` applied (unless
    ``overrides=False``: the document's alone)."""
    data = _data()
    source, rates = _overrides() if overrides else ("", {})
    prices = tuple(
        _price(entry, None if entry.formula is None else entry.formula.default, rates, source)
        for entry in data.entries
    )
    return Catalogue(prices, data.not_priced, data.document, source or None)

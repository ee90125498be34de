"""`make generate`'s price step: what each call costs, read from Stability's own API document.

Stability publishes no price API. The one machine-readable place it states prices is the
"### Credits" section of each operation's description in its v2beta OpenAPI document, vendored
in ``spec/upstream/``. This reads every ``/v2beta/`` and ``/v2alpha/`` operation's section and
writes the catalogue ``stability_user.prices`` ships (``facade/stability_user/prices/
catalogue.json``): for each priced operation its method and path, the model where the price
depends on ``model``, the credits per successful result (a number, or a formula with its
parameter and default), the sentence that states it, and the SHA-256 of the document. Operations
without a Credits section (the result-polling GETs, the retired v2alpha ones priced in cents)
are listed as not priced.

It never guesses: every sentence of a Credits section must be one it knows (a flat rate, the
Ultra service's, a formula with its examples, "you will not be charged for failed ..."), each
part must state exactly one price, a formula must agree with its examples and its default, and a
heading must name a model; anything else stops it with the operation named (exit 1).

``--check`` writes nothing and fails (exit 1, with a diff) when the checked-in catalogue is not
what the document makes (``make check-generated``). ``read_catalogue()`` and ``price_changes()``
are for other scripts (the spec watch) to compare the prices of two documents.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["CatalogueError", "catalogue_text", "main", "price_changes", "read_catalogue"]

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = ROOT / "spec" / "upstream"
DOCUMENT_NAME = "stability-v2beta.openapi.json"
CATALOGUE = ROOT / "facade" / "stability_user" / "prices" / "catalogue.json"

# The operations read: the v2 API's. The v1 ones the published document may also hold state no
# credits in this form, and would be listed as "not priced" when they are not free.
SCOPE = ("/v2beta/", "/v2alpha/")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
UNIT = "per successful result"
# Path segments whose children are named with them: /upscale/fast is "upscale-fast".
GROUPED = frozenset({"upscale"})

_NUMBER = r"(?P<credits>\d+(?:\.\d+)?)"
_OUTCOME = r"per successful (?:generation|result)"
_HEADING_LINE = re.compile(r"^\*\*(?P<heading>[^*]+)\*\*$")
_HEADING_BULLET = re.compile(r"^- \*\*(?P<heading>[^*]+)\*\*:\s*(?P<rest>.*)$")
_SECTION = re.compile(r"^### Credits[ \t]*$", re.MULTILINE)
_NEXT_HEADING = re.compile(r"^#{1,3} ", re.MULTILINE)
_PRICE_SECTION = re.compile(r"^### Price[ \t]*\n(?P<body>.*?)(?=^#{1,3} |\Z)", re.M | re.S)
# Each sentence a Credits section may hold. A price sentence gives ``credits``.
_FLAT = re.compile(rf"Flat rate of {_NUMBER} credits? {_OUTCOME}\.")
_REQUESTS_FLAT = re.compile(
    rf"Requests made using the (?P<named>.+?) model have a flat rate of {_NUMBER} credits? "
    rf"{_OUTCOME}\."
)
_USES = re.compile(rf"The (?P<service>[A-Z][\w ]*?) service uses {_NUMBER} credits? {_OUTCOME}\.")
_BY_DEFAULT = re.compile(rf"By default, {_NUMBER} credits? {_OUTCOME}\.")
_FORMULA = re.compile(
    r"The number of credits is determined by the following formula: "
    r"`credits = (?P<base>\d+(?:\.\d+)?) \+ (?P<rate>\d+(?:\.\d+)?) \* (?P<parameter>[a-z_]+)`\."
)
_EXAMPLES = re.compile(r"Examples:(?P<items>(?:\s*- [^-]+?credits(?: \[default\])?)+)")
_EXAMPLE = re.compile(r"- (?P<value>\d+) (?P<unit>[a-z_]+) = (?P<credits>\d+(?:\.\d+)?) credits")
_FREE = re.compile(
    r"(?:As always, )?[Yy]ou will not be charged for failed (?:generations|results)\."
)
_MODEL_ID = re.compile(r"`([a-z][a-z0-9.\-]*[a-z0-9])`")


class CatalogueError(Exception):
    """A Credits section the generator cannot read whole, or a catalogue that contradicts itself."""


def _number(text: str) -> int | float:
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


def _normalized(name: str) -> str:
    """A model's name as headings and ids both spell it: ``SD 3.5 Large`` and ``sd3.5-large``
    are ``sd3.5large``; ``Stable Audio 2.0`` and ``stable-audio-2`` are ``stableaudio2``."""
    lowered = re.sub(r"(\d+)\.0(?!\d)", r"\1", name.lower())
    return re.sub(r"[^a-z0-9.]", "", lowered)


def _section(description: str) -> str | None:
    found = list(_SECTION.finditer(description))
    if not found:
        return None
    if len(found) > 1:
        raise CatalogueError("two '### Credits' sections")
    rest = description[found[0].end() :]
    end = _NEXT_HEADING.search(rest)
    return rest[: end.start()] if end else rest


def _parts(section: str) -> list[tuple[str | None, str]]:
    """The section split at its bold headings (``**Stable Audio 2.0**`` on a line of its own,
    or ``- **SD 3.5 Large**: ...``): each part's heading (``None`` before the first) and text."""
    parts: list[tuple[str | None, list[str]]] = [(None, [])]
    for raw in section.splitlines():
        line = raw.strip()
        if (match := _HEADING_LINE.match(line)) is not None:
            parts.append((match["heading"].strip(), []))
        elif (match := _HEADING_BULLET.match(line)) is not None:
            parts.append((match["heading"].strip(), [match["rest"]]))
        elif line:
            parts[-1][1].append(line)
    return [(heading, " ".join(lines)) for heading, lines in parts if heading or lines]


def _formula(text: str, default_credits: int | float) -> tuple[dict[str, Any], str]:
    """The formula stated in ``text`` (checked against its examples and its default), and
    ``text`` without it and its examples."""
    formula = _FORMULA.search(text)
    examples = _EXAMPLES.search(text)
    if formula is None or examples is None:
        raise CatalogueError("a default price without its formula and examples")
    base, rate = Decimal(formula["base"]), Decimal(formula["rate"])
    parameter = formula["parameter"]
    defaults = []
    for item in re.split(r"\s+(?=- )", examples["items"].strip()):
        example = _EXAMPLE.fullmatch(item.removesuffix(" [default]"))
        if example is None or example["unit"] != parameter:
            raise CatalogueError(f"an example the formula cannot be checked on: {item!r}")
        value = Decimal(example["value"])
        if base + rate * value != Decimal(example["credits"]):
            raise CatalogueError(f"the formula disagrees with its example {item!r}")
        if item.endswith("[default]"):
            defaults.append(int(value))
    if len(defaults) != 1:
        raise CatalogueError("the formula's examples do not name one default")
    (default,) = defaults
    if base + rate * default != Decimal(str(default_credits)):
        raise CatalogueError("the formula at its default disagrees with the default price")
    stated = {
        "base": _number(formula["base"]),
        "rate": _number(formula["rate"]),
        "parameter": parameter,
        "default": default,
        "text": f"{formula['base']} + {formula['rate']} * {parameter}",
    }
    rest = text[: formula.start()] + text[formula.end() :]
    start = rest.find(examples.group(0))
    return stated, rest[:start] + rest[start + len(examples.group(0)) :]


def _read_part(heading: str | None, text: str) -> dict[str, Any]:
    """One part's price: ``credits``, ``formula``, ``stated`` (the sentences quoted) and
    ``free_when_failed``. Every sentence must be read."""
    found: list[tuple[re.Match[str], re.Pattern[str]]] = []
    for pattern in (_FLAT, _REQUESTS_FLAT, _USES, _BY_DEFAULT):
        found += [(match, pattern) for match in pattern.finditer(text)]
    if len(found) != 1:
        raise CatalogueError(
            f"{'no' if not found else len(found)} price statements where one is read"
            + (f" (under '{heading}')" if heading else "")
        )
    ((match, pattern),) = found
    if (
        pattern is _REQUESTS_FLAT
        and heading is not None
        and _normalized(match["named"]) != _normalized(heading)
    ):
        raise CatalogueError(f"'{match['named']}' priced under the heading '{heading}'")
    credits = _number(match["credits"])
    stated = match.group(0)
    rest = text[: match.start()] + text[match.end() :]
    formula = None
    if pattern is _BY_DEFAULT:
        formula, rest = _formula(rest, credits)
        stated += f" `credits = {formula['text']}`"
    free = _FREE.search(rest)
    if free is not None:
        rest = rest[: free.start()] + rest[free.end() :]
    if rest.strip():
        raise CatalogueError(f"a sentence it cannot read: {' '.join(rest.split())!r}")
    if heading is not None:
        stated = f"{heading}: {stated}"
    return {
        "credits": credits,
        "formula": formula,
        "stated": stated,
        "free_when_failed": free is not None,
    }


def _model_property(operation: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {})
    for media in content.values():
        model = media.get("schema", {}).get("properties", {}).get("model")
        if isinstance(model, dict):
            return model
    return None


def _model_ids(model: dict[str, Any] | None) -> list[str]:
    """The models an operation's ``model`` property names: its enum, then those its description
    prices (a document may price a model its enum has not caught up with)."""
    if model is None:
        return []
    ids = [str(value) for value in model.get("enum", [])]
    ids += [found for found in _MODEL_ID.findall(model.get("description", "")) if found not in ids]
    return ids


def _matching(heading: str, ids: list[str]) -> list[str]:
    return [model for model in ids if _normalized(model) == _normalized(heading)]


def _name(path: str) -> str:
    parent, _, last = path.rstrip("/").rpartition("/")
    group = parent.rpartition("/")[2]
    return f"{group}-{last}" if group in GROUPED else last


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, item in document.get("paths", {}).items():
        if not path.startswith(SCOPE) or not isinstance(item, dict):
            continue
        for method in METHODS:
            if isinstance(item.get(method), dict):
                found.append((method.upper(), path, item[method]))
    return found


def _not_priced(description: str) -> str:
    price = _PRICE_SECTION.search(description)
    if price is not None and "cent" in price["body"]:
        said = " ".join(price["body"].split())
        return f"no Credits section; priced in cents instead ('### Price': {said})"
    return "no Credits section"


def read_catalogue(
    raw: bytes, *, file: str = DOCUMENT_NAME, url: str | None = None, copied: str | None = None
) -> dict[str, Any]:
    """The catalogue of the document ``raw`` (its bytes, hashed as they are).

    Raises:
        CatalogueError: A Credits section it cannot read (the operation named), or names that
            contradict each other.
    """
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise CatalogueError(f"{file}: not JSON ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        raise CatalogueError(f"{file}: not an OpenAPI document")
    operations = _operations(document)
    every_id = [m for _, _, op in operations for m in _model_ids(_model_property(op))]
    prices: list[dict[str, Any]] = []
    not_priced: list[dict[str, Any]] = []
    for method, path, operation in operations:
        where = f"{method} {path}"
        description = str(operation.get("description", ""))
        try:
            section = _section(description)
            if section is None:
                not_priced.append(
                    {"method": method, "path": path, "reason": _not_priced(description)}
                )
                continue
            prices += _read_operation(method, path, operation, section, every_id)
        except CatalogueError as error:
            raise CatalogueError(f"{where}: its Credits section: {error}") from None
    _check_names(prices)
    return {
        "generated_by": "scripts/price_catalogue.py (make generate): do not edit",
        "document": {
            "file": file,
            "url": url,
            "copied": copied,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "version": document.get("info", {}).get("version"),
        },
        "unit": UNIT,
        "prices": prices,
        "not_priced": not_priced,
    }


def _read_operation(
    method: str, path: str, operation: dict[str, Any], section: str, every_id: list[str]
) -> list[dict[str, Any]]:
    parts = _parts(section)
    headed = [heading for heading, _ in parts if heading is not None]
    if headed and parts[0][0] is None:
        raise CatalogueError(f"text before its first heading: {parts[0][1]!r}")
    model = _model_property(operation)
    ids = _model_ids(model)
    default_model = model.get("default") if model is not None else None
    entries = []
    for heading, text in parts:
        read = _read_part(heading, text)
        name, priced_model = _name(path), None
        if heading is not None:
            own = _matching(heading, ids)
            anywhere = own or _matching(heading, every_id)
            if len(set(anywhere)) != 1:
                raise CatalogueError(f"the heading '{heading}' names no one model")
            name = anywhere[0]
            priced_model = own[0] if own else None
        entries.append(
            {
                "name": name,
                "method": method,
                "path": path,
                "model": priced_model,
                "default_model": priced_model is not None and priced_model == default_model,
                **read,
            }
        )
    if len({entry["model"] for entry in entries}) != len(entries):
        raise CatalogueError("two prices for one model")
    # "As always, you will not be charged for failed generations." ends a section of several
    # parts, and is said of them all.
    free = any(entry["free_when_failed"] for entry in entries)
    return [{**entry, "free_when_failed": free} for entry in entries]


def _check_names(prices: list[dict[str, Any]]) -> None:
    stated: dict[str, tuple[Any, Any]] = {}
    for entry in prices:
        price = (entry["credits"], entry["formula"])
        if stated.setdefault(entry["name"], price) != price:
            raise CatalogueError(
                f"the name {entry['name']!r} has two prices ({entry['method']} {entry['path']})"
            )


def catalogue_text(catalogue: dict[str, Any]) -> str:
    """The catalogue as the checked-in file holds it."""
    return json.dumps(catalogue, indent=2, ensure_ascii=False) + "\n"


def _label(entry: dict[str, Any]) -> str:
    """``generate/ultra``, ``generate/sd3 (sd3.5-large)``: what a summary calls a price."""
    label = "/".join(entry["path"].rstrip("/").split("/")[-2:])
    return f"{label} ({entry['model']})" if entry["model"] else label


def _amount(entry: dict[str, Any]) -> str:
    formula = entry["formula"]
    if formula is None:
        return f"{entry['credits']:g}"
    default = f"{entry['credits']:g} at {formula['default']} {formula['parameter']}"
    return f"{formula['text']} ({default})"


def price_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """How the prices moved from catalogue ``old`` to ``new``, one line each in plain words
    (``generate/ultra: 8 to 9 credits per successful result``, ``newly priced: ...``,
    ``no longer priced: ...``); empty when none did."""

    def keyed(catalogue: dict[str, Any]) -> dict[tuple[str, str, str | None], dict[str, Any]]:
        return {(e["method"], e["path"], e["model"]): e for e in catalogue["prices"]}

    def credits(amount: str) -> str:
        return f"{amount} credit{'' if amount == '1' else 's'} {UNIT}"

    before, after = keyed(old), keyed(new)
    lines = []
    for key, entry in after.items():
        if key not in before:
            lines.append(f"newly priced: {_label(entry)}, {credits(_amount(entry))}")
        elif _amount(before[key]) != _amount(entry):
            lines.append(f"{_label(entry)}: {_amount(before[key])} to {credits(_amount(entry))}")
    lines += [f"no longer priced: {_label(e)}" for key, e in before.items() if key not in after]
    return lines


def _build(upstream: Path) -> dict[str, Any]:
    sources = json.loads((upstream / "sources.json").read_text(encoding="utf-8"))
    source = sources.get(DOCUMENT_NAME, {})
    return read_catalogue(
        (upstream / DOCUMENT_NAME).read_bytes(),
        url=source.get("url"),
        copied=source.get("copied"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="price_catalogue.py", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the catalogue is stale")
    parser.add_argument("--upstream", type=Path, default=UPSTREAM, help="the vendored documents")
    parser.add_argument("--output", type=Path, default=CATALOGUE, help="the catalogue to write")
    args = parser.parse_args(argv)
    try:
        text = catalogue_text(_build(args.upstream))
    except CatalogueError as error:
        print(f"price catalogue: {DOCUMENT_NAME}: {error}; nothing written", file=sys.stderr)
        return 1
    output: Path = args.output
    if not args.check:
        output.write_text(text, encoding="utf-8")
        return 0
    current = output.read_text(encoding="utf-8") if output.is_file() else ""
    if current == text:
        print(
            f"{output.relative_to(ROOT) if output.is_relative_to(ROOT) else output} is up to date"
        )
        return 0
    sys.stderr.writelines(
        difflib.unified_diff(
            current.splitlines(keepends=True), text.splitlines(keepends=True), str(output), "new"
        )
    )
    print(
        f"{output} is out of date with {DOCUMENT_NAME}: run 'make generate' and commit the result",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())

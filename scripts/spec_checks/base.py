"""What a check reads (``Documents``), what it returns (``Finding``, ``Impact``), and the ways
of reading an OpenAPI document they share."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "METHODS",
    "Check",
    "CheckError",
    "Documents",
    "Finding",
    "Impact",
    "inlined",
    "normalized",
    "operations",
    "resolve",
    "shown",
    "tagged",
]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class CheckError(Exception):
    """A check could not compare the documents (openapi-diff refused one, or failed)."""


class Impact(enum.Enum):
    """What a change means for a client of the wrapped operations, the gravest first; then a
    note, and a price that moved (a verdict of its own: it needs a release whatever the
    wrapped operations did)."""

    BREAKING = "Breaking"
    REVIEW = "Not classified"
    COMPATIBLE = "Compatible"
    READERS = "For readers only"
    NOTE = "Note"
    PRICE = "Price"

    @property
    def rank(self) -> int:
        return list(Impact).index(self)


@dataclass(frozen=True)
class Documents:
    """The vendored copy (``old``) and the published document (``new``), the tag of them this
    SDK wraps (``v1/user``; ``None`` in a document vendored for something else, its prices),
    and the copy's file name in ``spec/upstream/``."""

    old: dict[str, Any]
    new: dict[str, Any]
    tag: str | None
    name: str


@dataclass(frozen=True)
class Finding:
    """One change in plain words (Markdown), how grave it is, whether it is in the tag's
    operations, where a client meets it (``the balance response``) if it says, and which
    tool said so if not this project's own check (``openapi-diff``)."""

    impact: Impact
    text: str
    in_tag: bool = True
    where: tuple[str, ...] = ()
    source: str = ""

    def __str__(self) -> str:
        return f"{self.text} ({', '.join(self.where)})" if self.where else self.text


Check = Callable[[Documents], list[Finding]]


def normalized(document: Any) -> str:
    """``document`` as one canonical string: keys sorted, whitespace and the way a number is
    written aside (``1e6``, ``1e+06`` and ``1000000`` are one number)."""
    return json.dumps(_integral(document), sort_keys=True, separators=(",", ":"))


def _integral(node: Any) -> Any:
    if isinstance(node, float) and node.is_integer():
        return int(node)
    if isinstance(node, dict):
        return {key: _integral(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_integral(value) for value in node]
    return node


def shown(value: Any) -> str:
    """``value`` as a summary quotes it: a string as it is, anything else as JSON."""
    return f"`{value if isinstance(value, str) else normalized(value)}`"


def _unescaped(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def pointer(document: dict[str, Any], reference: str) -> Any:
    """What the local reference ``#/a/b`` points at in ``document`` (``None`` if nothing)."""
    node: Any = document
    for part in map(_unescaped, reference[2:].split("/") if reference != "#" else []):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def resolve(document: dict[str, Any], node: Any) -> tuple[str | None, Any]:
    """``node`` with its local ``$ref`` followed (through chains), and the name of the last
    component followed (``BalanceResponseBody``), if any."""
    name = None
    followed: set[str] = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        reference = node["$ref"]
        if not reference.startswith("#") or reference in followed:
            break  # not in this document, or a chain of references that loops
        followed.add(reference)
        name = _unescaped(reference.rsplit("/", 1)[-1])
        node = pointer(document, reference)
    return name, node


def inlined(document: dict[str, Any], node: Any, active: frozenset[str] = frozenset()) -> Any:
    """``node`` with its local references replaced by what they point at (a reference back
    into itself kept as written): what a client meets, whatever the document's layout."""
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#") and reference not in active:
            return inlined(document, pointer(document, reference), active | {reference})
        return {key: inlined(document, value, active) for key, value in node.items()}
    if isinstance(node, list):
        return [inlined(document, value, active) for value in node]
    return node


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every operation by ``METHOD /path``, with the path's parameters before its own."""
    found = {}
    for path, item in document["paths"].items():
        for method in METHODS:
            if isinstance(item, dict) and isinstance(item.get(method), dict):
                operation = item[method]
                found[f"{method.upper()} {path}"] = {
                    **operation,
                    "parameters": [*item.get("parameters", []), *operation.get("parameters", [])],
                }
    return found


def tagged(documents: Documents) -> list[str]:
    """The operations the tag holds in either document, by ``METHOD /path``."""
    if documents.tag is None:
        return []
    names: set[str] = set()
    for document in (documents.old, documents.new):
        for name, operation in operations(document).items():
            tags = operation.get("tags")
            if isinstance(tags, list) and documents.tag in tags:
                names.add(name)
    return sorted(names)

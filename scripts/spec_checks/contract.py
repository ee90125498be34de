"""The check of the wrapped operations' wire contract: how each operation of the tag changed for
a client, in what it sends (parameters and headers) and in what it reads (statuses, media
types, headers and bodies, property by property, following ``$ref``, cycles included).

A change that only a reader sees (descriptions, examples, ``x-`` extensions) is named as such;
one this check has no rule for is named "not classified", never passed over. What allows more
than before breaks a client where it reads (it meets what it did not expect) and is compatible
where it sends; what allows less, the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from spec_checks.base import (
    Documents,
    Finding,
    Impact,
    inlined,
    normalized,
    operations,
    resolve,
    shown,
    tagged,
)

__all__ = ["client_contract"]

# What only a reader sees: a change to these alone leaves every client as it was.
FOR_READERS = frozenset(
    {
        "description",
        "summary",
        "example",
        "examples",
        "externalDocs",
        "title",
        "operationId",
        "tags",
    }
)
# What a client that reads a response never checks: it may change without breaking one.
CONSTRAINTS = frozenset(
    {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "default",
    }
)
PARAMETER_KINDS = {
    "query": "query parameter",
    "header": "header",
    "path": "path parameter",
    "cookie": "cookie",
}
# The schema keywords _schema reads itself, before the rest.
TYPED = ("type", "format", "nullable", "properties", "required", "enum")


def client_contract(documents: Documents) -> list[Finding]:
    """How the tag's operations changed for a client: what it sends and what it reads."""
    return _Contract(documents).findings()


def _for_readers(key: str) -> bool:
    return key in FOR_READERS or key.startswith("x-")


def _mapping(node: Any) -> dict[str, Any]:
    return node if isinstance(node, dict) else {}


@dataclass(frozen=True)
class _Place:
    """Where a change is: ``path`` (``organizations[].role``) inside ``root`` (a component,
    ``BalanceResponseBody``, or what holds an inline schema: ``the body``, a header), reached
    from ``where`` (``the balance response``), in what the client reads (``reads``) or sends."""

    root: str
    path: str = ""
    where: str = ""
    reads: bool = True

    def subject(self) -> str:
        return f"`{self.path}` in {self.root}" if self.path else self.root

    def at(self, step: str) -> _Place:
        if step == "[]":
            return replace(self, path=f"{self.path}[]")
        return replace(self, path=f"{self.path}.{step}" if self.path else step)

    def impact(self, allows_more: bool) -> Impact:
        """A change that allows more than before breaks what the client reads; one that allows
        less breaks what it sends."""
        return Impact.BREAKING if allows_more == self.reads else Impact.COMPATIBLE


class _Contract:
    def __init__(self, documents: Documents) -> None:
        self.documents = documents
        self.found: dict[tuple[Impact, str], list[str]] = {}

    def add(self, impact: Impact, text: str, where: str = "") -> None:
        wheres = self.found.setdefault((impact, text), [])
        if where and where not in wheres:
            wheres.append(where)

    def findings(self) -> list[Finding]:
        old_operations = operations(self.documents.old)
        new_operations = operations(self.documents.new)
        for name in tagged(self.documents):
            if name not in new_operations:
                self.add(Impact.BREAKING, f"{name} removed")
            elif name not in old_operations:
                self.add(Impact.COMPATIBLE, f"{name} added")
            else:
                self._operation(name, old_operations[name], new_operations[name])
        return [
            Finding(impact, text, True, tuple(wheres))
            for (impact, text), wheres in self.found.items()
        ]

    def _differ(self, old: Any, new: Any) -> bool:
        was = inlined(self.documents.old, old)
        return normalized(was) != normalized(inlined(self.documents.new, new))

    def _each_key(
        self,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        place: _Place,
        rules: Mapping[str, Callable[[str], object]],
    ) -> None:
        """Each key whose value differs, by its rule; a key with none: what a reader sees,
        deprecation, or else a change this check does not classify."""
        readers = []
        for key in sorted(set(old) | set(new)):
            if not self._differ(old.get(key), new.get(key)):
                continue
            if key in rules:
                rules[key](key)
            elif _for_readers(key):
                readers.append(key)
            elif key == "deprecated":
                state = "now" if new.get(key) is True else "no longer"
                self.add(Impact.COMPATIBLE, f"{place.subject()} is {state} deprecated", place.where)
            else:
                self.add(Impact.REVIEW, f"`{key}` of {place.subject()} changed", place.where)
        if readers:
            changed = ", ".join(f"`{key}`" for key in readers)
            self.add(Impact.READERS, f"{changed} of {place.subject()} changed", place.where)

    @staticmethod
    def _elsewhere(key: str) -> None:
        """The rule of a key another rule reads."""

    def _operation(self, name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        label = next((o["summary"] for o in (new, old) if isinstance(o.get("summary"), str)), "")
        label = label if label and " " not in label else name

        def parameters(key: str) -> None:
            self._parameters(name, old[key], new[key])

        def responses(key: str) -> None:
            self._responses(name, label, _mapping(old.get(key)), _mapping(new.get(key)))

        rules = {"parameters": parameters, "responses": responses}
        rules |= dict.fromkeys(("security", "servers"), self._elsewhere)
        self._each_key(old, new, _Place(root=name), rules)
        method, path = name.split(" ", 1)
        was = self._access(self.documents.old, path, method.lower())
        now = self._access(self.documents.new, path, method.lower())
        if self._differ(was, now):
            self.add(Impact.REVIEW, f"the servers or authentication of {name} changed")

    @staticmethod
    def _access(document: dict[str, Any], path: str, method: str) -> Any:
        """Where ``method path`` is served and how it is authenticated: its effective servers
        and security requirements, and the security schemes they name."""
        item = document["paths"][path]
        operation = item[method]
        servers = operation.get("servers") or item.get("servers") or document.get("servers")
        security = operation.get("security", document.get("security"))
        schemes = document.get("components", {}).get("securitySchemes", {})
        named = {
            scheme: schemes.get(scheme)
            for requirement in security or []
            if isinstance(requirement, dict)
            for scheme in requirement
        }
        return {"servers": servers, "security": security, "schemes": named}

    @staticmethod
    def _parameters_of(document: dict[str, Any], listed: Iterable[Any]) -> dict[Any, Any]:
        found = {}
        for entry in listed:
            _, parameter = resolve(document, entry)
            if isinstance(parameter, dict) and isinstance(parameter.get("name"), str):
                location = parameter.get("in")
                key = parameter["name"].lower() if location == "header" else parameter["name"]
                found[location, key] = parameter  # the operation's own, listed last, win
        return found

    def _parameters(self, name: str, old_listed: list[Any], new_listed: list[Any]) -> None:
        old = self._parameters_of(self.documents.old, old_listed)
        new = self._parameters_of(self.documents.new, new_listed)
        for key in sorted(old.keys() | new.keys(), key=str):
            parameter = new.get(key) or old[key]
            kind = PARAMETER_KINDS.get(str(parameter.get("in")), f"{parameter.get('in')} parameter")
            named = f"{kind} `{parameter['name']}`"
            if key not in new:
                self.add(Impact.BREAKING, f"{named} removed from {name}")
            elif key not in old:
                if new[key].get("required") is True:
                    self.add(Impact.BREAKING, f"required {named} added to {name}")
                else:
                    self.add(Impact.COMPATIBLE, f"optional {named} added to {name}")
            else:
                place = _Place(root=f"{named} of {name}", reads=False)
                self._parameter(old[key], new[key], place)

    def _parameter(self, old: dict[str, Any], new: dict[str, Any], place: _Place) -> None:
        """A parameter the client sends, or a header it reads (``place.reads``)."""

        def required(key: str) -> None:
            now_required = new.get(key) is True
            if place.reads:
                state = "is now always sent" if now_required else "may now be missing"
            else:
                state = "is now required" if now_required else "is now optional"
            self.add(place.impact(not now_required), f"{place.subject()} {state}", place.where)

        def schema(key: str) -> None:
            self._schema(old.get(key, {}), new.get(key, {}), place, set())

        rules = {"required": required, "schema": schema}
        rules |= dict.fromkeys(("name", "in"), self._elsewhere)
        self._each_key(old, new, place, rules)

    def _keyed(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        noun: Callable[[str], str],
        where: str,
        common: Callable[[str], None],
    ) -> None:
        """Each key of either mapping (a status, a media type, a header the client reads):
        removed, which breaks what the client relied on; added; or in both, by ``common``."""
        for key in sorted(old.keys() | new.keys()):
            if key not in new:
                self.add(Impact.BREAKING, f"{noun(key)} removed from {where}")
            elif key not in old:
                self.add(Impact.COMPATIBLE, f"{noun(key)} added to {where}")
            else:
                common(key)

    def _responses(self, name: str, label: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        def response(status: str) -> None:
            success = status.startswith("2") and not any(
                other.startswith("2") and other < status for other in new
            )
            where = f"the {label} response" if success else f"the {label} {status} response"
            self._response(old[status], new[status], _Place(root=where))

        self._keyed(old, new, lambda status: f"status {status}", name, response)

    def _response(self, old: Any, new: Any, place: _Place) -> None:
        _, old = resolve(self.documents.old, old)
        _, new = resolve(self.documents.new, new)
        if not (isinstance(old, dict) and isinstance(new, dict)):
            if self._differ(old, new):
                self.add(Impact.REVIEW, f"{place.subject()} changed")
            return

        def content(key: str) -> None:
            self._content(_mapping(old.get(key)), _mapping(new.get(key)), place.root)

        def headers(key: str) -> None:
            self._headers(_mapping(old.get(key)), _mapping(new.get(key)), place.root)

        self._each_key(old, new, place, {"content": content, "headers": headers})

    def _content(self, old: dict[str, Any], new: dict[str, Any], where: str) -> None:
        def media_type(media: str) -> None:
            was, now = _mapping(old[media]), _mapping(new[media])

            def schema(key: str) -> None:
                body = _Place(root="the body", where=where)
                self._schema(was.get(key, {}), now.get(key, {}), body, set())

            self._each_key(was, now, _Place(root=f"`{media}` in {where}"), {"schema": schema})

        self._keyed(old, new, lambda media: f"`{media}`", where, media_type)

    def _headers(self, old: dict[str, Any], new: dict[str, Any], where: str) -> None:
        def header(name: str) -> None:
            _, was = resolve(self.documents.old, old[name])
            _, now = resolve(self.documents.new, new[name])
            place = _Place(root=f"header `{name}` of {where}")
            self._parameter(_mapping(was), _mapping(now), place)

        self._keyed(old, new, lambda name: f"header `{name}`", where, header)

    def _schema(self, old: Any, new: Any, place: _Place, seen: set[tuple[Any, ...]]) -> None:
        """How a schema changed for a client that reads it (``place.reads``) or sends it.
        ``seen`` holds the pairs of components compared so far: a ``$ref`` cycle ends there."""
        old_name, old = resolve(self.documents.old, old)
        new_name, new = resolve(self.documents.new, new)
        if old_name or new_name:
            pair = (old_name, new_name, place.where, place.reads)
            if pair in seen:
                return
            seen.add(pair)
            renamed = old_name and new_name and old_name != new_name
            root = f"`{new_name}` (was `{old_name}`)" if renamed else f"`{new_name or old_name}`"
            place = _Place(root=root, where=place.where or place.subject(), reads=place.reads)
        if not (isinstance(old, dict) and isinstance(new, dict)):
            if self._differ(old, new):
                self.add(Impact.REVIEW, f"{place.subject()} changed", place.where)
            return
        if self._retyped(old, new, place):
            return  # what it holds changed with it: the new type says all
        self._nullable(old, new, place)
        self._properties(old, new, place, seen)
        self._enum(old, new, place)

        def inner(key: str) -> None:
            if isinstance(old.get(key), dict) and isinstance(new.get(key), dict):
                self._schema(old[key], new[key], place.at("[]" if key == "items" else "*"), seen)
            else:
                self.add(Impact.REVIEW, f"`{key}` of {place.subject()} changed", place.where)

        def parts(key: str) -> None:
            was, now = old.get(key), new.get(key)
            if isinstance(was, list) and isinstance(now, list) and len(was) == len(now):
                for old_part, new_part in zip(was, now, strict=True):
                    self._schema(old_part, new_part, place, seen)
            else:
                self.add(Impact.REVIEW, f"`{key}` of {place.subject()} changed", place.where)

        def constraint(key: str) -> None:
            was, now = (shown(s[key]) if key in s else "none" for s in (old, new))
            text = f"`{key}` of {place.subject()} changed from {was} to {now}"
            self.add(Impact.COMPATIBLE if place.reads else Impact.REVIEW, text, place.where)

        rules: dict[str, Callable[[str], object]] = dict.fromkeys(TYPED, self._elsewhere)
        rules |= dict.fromkeys(("items", "additionalProperties"), inner)
        rules |= dict.fromkeys(("allOf", "anyOf", "oneOf"), parts)
        rules |= dict.fromkeys(CONSTRAINTS, constraint)
        self._each_key(old, new, place, rules)

    @staticmethod
    def _type(schema: dict[str, Any]) -> tuple[frozenset[str], Any]:
        declared = schema.get("type")
        types = {declared} if isinstance(declared, str) else set(declared or [])
        return frozenset(map(str, types - {"null"})), schema.get("format")

    @staticmethod
    def _type_name(kind: tuple[frozenset[str], Any]) -> str:
        types, format_ = kind
        name = " or ".join(sorted(types)) or "any type"
        return f"{name} ({format_})" if format_ is not None else name

    def _retyped(self, old: dict[str, Any], new: dict[str, Any], place: _Place) -> bool:
        was, now = self._type(old), self._type(new)
        if was == now:
            return False
        text = f"{place.subject()} retyped from {self._type_name(was)} to {self._type_name(now)}"
        self.add(Impact.BREAKING, text, place.where)
        return True

    @staticmethod
    def _null_allowed(schema: dict[str, Any]) -> bool:
        declared = schema.get("type")
        return schema.get("nullable") is True or (isinstance(declared, list) and "null" in declared)

    def _nullable(self, old: dict[str, Any], new: dict[str, Any], place: _Place) -> None:
        allowed = self._null_allowed(new)
        if self._null_allowed(old) != allowed:
            state = "may now be null" if allowed else "may no longer be null"
            self.add(place.impact(allowed), f"{place.subject()} {state}", place.where)

    def _properties(
        self, old: dict[str, Any], new: dict[str, Any], place: _Place, seen: set[tuple[Any, ...]]
    ) -> None:
        old_properties = _mapping(old.get("properties"))
        new_properties = _mapping(new.get("properties"))
        old_required = set(old.get("required") or [])
        new_required = set(new.get("required") or [])
        for name in sorted(old_properties.keys() - new_properties.keys()):
            text = f"`{place.at(name).path}` removed from {place.root}"
            self.add(Impact.BREAKING, text, place.where)
        for name in sorted(new_properties.keys() - old_properties.keys()):
            required = name in new_required
            text = f"{'required' if required else 'optional'} `{place.at(name).path}` added to"
            impact = place.impact(allows_more=False) if required else Impact.COMPATIBLE
            self.add(impact, f"{text} {place.root}", place.where)
        undeclared = (old_required | new_required) - old_properties.keys() - new_properties.keys()
        for name in sorted((old_properties.keys() & new_properties.keys()) | undeclared):
            inner = place.at(name)
            if (name in old_required) != (name in new_required):
                required = name in new_required
                if place.reads:
                    state = "is now always present" if required else "may now be missing"
                else:
                    state = "is now required" if required else "is now optional"
                self.add(place.impact(not required), f"{inner.subject()} {state}", place.where)
            if name in old_properties and name in new_properties:
                self._schema(old_properties[name], new_properties[name], inner, seen)

    def _enum(self, old: dict[str, Any], new: dict[str, Any], place: _Place) -> None:
        was, now = old.get("enum"), new.get("enum")
        if not (isinstance(was, list) or isinstance(now, list)):
            return
        subject = place.subject()
        if not isinstance(was, list):
            values = ", ".join(map(shown, now or []))
            self.add(place.impact(False), f"{subject} now limited to {values}", place.where)
            return
        if not isinstance(now, list):
            text = f"{subject} no longer limited to a list of values"
            self.add(place.impact(True), text, place.where)
            return
        old_values = {normalized(value) for value in was}
        new_values = {normalized(value) for value in now}
        if added := [value for value in now if normalized(value) not in old_values]:
            text = f"value {', '.join(map(shown, added))} added to {subject}"
            self.add(place.impact(True), text, place.where)
        if removed := [value for value in was if normalized(value) not in new_values]:
            text = f"value {', '.join(map(shown, removed))} removed from {subject}"
            self.add(place.impact(False), text, place.where)

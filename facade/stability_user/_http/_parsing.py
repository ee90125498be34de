"""Turn a success response's body into a model, or an ``InvalidResponseError``.

The generated client's ``from_dict`` trusts the body (a missing field is a ``KeyError``, a
string passes for a number), so the facade checks every field once here and builds its own
models directly; nothing else on the call path looks at the body again.

Every string the models hold can be written as UTF-8: JSON may escape a lone surrogate
(``"\\ud800"``), which no UTF-8 text can hold and on which every exporter's scrape, log line
and history write would fail; it becomes U+FFFD, as a UTF-8 decoder's replacement does.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import httpx2

from .._exceptions import InvalidResponseError

if TYPE_CHECKING:
    from .._models import Account, Balance, Organization

__all__ = ["decode_json", "parse_account", "parse_balance"]

_Model = TypeVar("_Model")
_SURROGATE = re.compile("[\ud800-\udfff]")  # alone: a pair is one code point once decoded


class _Invalid(Exception):
    """A contract breach found while walking the body; becomes an InvalidResponseError."""


@functools.cache
def _models() -> tuple[type[Account], type[Balance], type[Organization]]:
    """The model classes, imported by the first answer, not by ``from stability_user import
    StabilityUser`` (four frozen dataclasses cost milliseconds of every program's start-up).

    Cached: an ``import`` statement in a function goes through importlib on every call, which
    costs as much as the rest of parsing a balance.
    """
    from .._models import Account, Balance, Organization

    return Account, Balance, Organization


def decode_json(content: bytes) -> Any:
    """Decode a JSON body; raises ValueError (or RecursionError for absurd nesting)."""
    return json.loads(content)


def _field(obj: dict[str, Any], name: str, kind: type, where: str) -> Any:
    try:
        value = obj[name]
    except KeyError:
        raise _Invalid(f"{where} lacks the required field {name!r}") from None
    if type(value) is not kind:
        raise _Invalid(f"{where}.{name} should be {kind.__name__}, got {type(value).__name__}")
    return _text(value) if isinstance(value, str) else value


def _text(value: str) -> str:
    """``value`` with each lone surrogate replaced by U+FFFD (ASCII, the usual case, as is)."""
    return value if value.isascii() else _SURROGATE.sub("\ufffd", value)


def _object(value: Any, where: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise _Invalid(f"{where} should be a JSON object, got {type(value).__name__}")
    return value


def _organization(value: Any, where: str) -> Organization:
    obj = _object(value, where)
    return _models()[2](
        id=_field(obj, "id", str, where),
        name=_field(obj, "name", str, where),
        role=_field(obj, "role", str, where),
        is_default=_field(obj, "is_default", bool, where),
    )


def _account(data: Any) -> Account:
    obj = _object(data, "account")
    organizations = _field(obj, "organizations", list, "account")
    picture = obj.get("profile_picture")
    if picture is not None and type(picture) is not str:
        raise _Invalid(f"account.profile_picture should be str, got {type(picture).__name__}")
    if picture is not None:
        picture = _text(picture)
    return _models()[0](
        id=_field(obj, "id", str, "account"),
        email=_field(obj, "email", str, "account"),
        organizations=tuple(
            _organization(item, f"account.organizations[{index}]")
            for index, item in enumerate(organizations)
        ),
        profile_picture=picture,
    )


def _balance(data: Any) -> Balance:
    obj = _object(data, "balance")
    if "credits" not in obj:
        raise _Invalid("balance lacks the required field 'credits'")
    credits = obj["credits"]
    if type(credits) not in (int, float):
        raise _Invalid(f"balance.credits should be a number, got {type(credits).__name__}")
    try:
        value = float(credits)
    except OverflowError:
        raise _Invalid("balance.credits is too large to be a float") from None
    if not math.isfinite(value):
        raise _Invalid(f"balance.credits should be finite, got {value}")
    return _models()[1](credits=value)


def _parse(response: httpx2.Response, build: Callable[[Any], _Model]) -> _Model:
    try:
        data = decode_json(response.content)
    except (ValueError, RecursionError) as err:
        raise InvalidResponseError(
            f"HTTP {response.status_code} from {response.request.url.path} did not carry a JSON "
            f"body ({_describe(response)})",
            response=response,
        ) from err
    try:
        return build(data)
    except _Invalid as err:
        raise InvalidResponseError(
            f"HTTP {response.status_code} from {response.request.url.path} broke the API "
            f"contract: {err}",
            response=response,
        ) from err


def _describe(response: httpx2.Response) -> str:
    content_type = response.headers.get("content-type", "no content type")
    return f"{len(response.content)} bytes, {content_type}"


def parse_account(response: httpx2.Response) -> Account:
    """The ``Account`` in a 2xx account response."""
    return _parse(response, _account)


def parse_balance(response: httpx2.Response) -> Balance:
    """The ``Balance`` in a 2xx balance response."""
    return _parse(response, _balance)

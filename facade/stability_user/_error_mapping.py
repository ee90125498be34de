"""The one boundary where lower-layer failures become the package's typed errors.

Shared by the sync and async clients: a non-2xx response becomes an ``APIStatusError``
subclass chosen by status code, and any ``httpx`` exception an ``APIConnectionError`` (or
``APITimeoutError``). Messages never hold the API key, even when a server echoes it back.
"""

from __future__ import annotations

import httpx

from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from ._parsing import decode_json

__all__ = ["STATUS_ERRORS", "connection_error", "redact", "status_error"]

STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}

# Enough of an unexpected body to recognise it (an HTML error page, a proxy's text).
_SNIPPET_CHARS = 200


def redact(text: str, secret: str) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    return text.replace(secret, "***") if secret and secret in text else text


def _error_class(status_code: int) -> type[APIStatusError]:
    if status_code >= 500:
        return InternalServerError
    return STATUS_ERRORS.get(status_code, APIStatusError)


def _snippet(response: httpx.Response) -> str:
    text = response.content[: _SNIPPET_CHARS * 4].decode("utf-8", "replace")
    text = " ".join(text.split())
    if len(text) > _SNIPPET_CHARS:
        text = text[:_SNIPPET_CHARS] + "..."
    return text


def _describe_body(response: httpx.Response) -> tuple[str | None, str | None, str]:
    """The API error body's ``(id, name, message)``, or a description of whatever came."""
    reason = response.reason_phrase or "unexpected status"
    if not response.content:
        return None, None, f"{reason} (empty body)"
    try:
        data = decode_json(response.content)
    except (ValueError, RecursionError):
        content_type = response.headers.get("content-type", "no content type")
        return None, None, f"{reason} ({content_type} body: {_snippet(response)!r})"
    message = _api_message(data)
    if message is not None:
        error_id, name = data.get("id"), data.get("name")
        return (
            error_id if isinstance(error_id, str) else None,
            name if isinstance(name, str) else None,
            message,
        )
    return None, None, f"{reason} (unexpected JSON body: {_snippet(response)!r})"


def _api_message(data: object) -> str | None:
    """The message of an API error body: ``{"id", "name", "message"}``, or the
    ``{"id", "name", "errors": [...]}`` form the API also answers (its 429), errors joined."""
    if not isinstance(data, dict):
        return None
    message = data.get("message")
    if isinstance(message, str):
        return message
    errors = data.get("errors")
    if isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
        return "; ".join(errors)
    return None


# A 404, or a 401 saying no key arrived, on a retired version's path: the path is the problem.
_MISSING_HEADER = "missing authorization header"


def _needs_notice(status_code: int, message: str) -> bool:
    return status_code == 404 or (status_code == 401 and _MISSING_HEADER in message.lower())


def status_error(
    response: httpx.Response, *, secret: str, notice: str | None = None
) -> APIStatusError:
    """The typed error for a non-2xx ``response`` (body already read).

    ``notice`` is appended to the message of a 404, or of a 401 saying the authorization
    header was missing: on a retired API version those mean the path, not the key.
    """
    error_id, name, message = _describe_body(response)
    if notice and _needs_notice(response.status_code, message):
        message = f"{message} ({notice})"
    return _error_class(response.status_code)(
        redact(message, secret),
        response=response,
        error_id=error_id,
        error_name=name,
    )


def connection_error(
    exc: httpx.HTTPError, *, request: httpx.Request | None, secret: str
) -> APIError:
    """The typed error for an ``httpx`` exception raised while sending or reading."""
    detail = redact(str(exc) or type(exc).__name__, secret)
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(
            f"Request timed out ({type(exc).__name__}: {detail})", request=request
        )
    return APIConnectionError(f"Connection error ({type(exc).__name__}: {detail})", request=request)

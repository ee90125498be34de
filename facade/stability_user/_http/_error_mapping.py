"""The one boundary where lower-layer failures become the package's typed errors.

Shared by the sync and async clients: a non-2xx response becomes an ``APIStatusError``
subclass chosen by status code, and any ``httpx2`` exception an ``APIConnectionError`` (or
``APITimeoutError``). Messages never hold the API key, even when a server echoes it back.
"""

from __future__ import annotations

import httpx2

from .._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from ._parsing import decode_json

__all__ = [
    "MAX_BODY_BYTES",
    "STATUS_ERRORS",
    "body_too_large_error",
    "connection_error",
    "redact",
    "status_error",
]

STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}

# Enough of an unexpected body to recognise it (an HTML error page, a proxy's text).
_SNIPPET_CHARS = 200
# Both endpoints answer a few hundred bytes; a body past this is not the API's, and is not
# read further (a misrouted download must not fill the memory).
MAX_BODY_BYTES = 1024 * 1024
# A shorter "key" is no real key, and replacing it would garble ordinary words ("un***nown").
_MIN_SECRET_CHARS = 8


def redact(text: str, secret: str) -> str:
    """``text`` with every occurrence of ``secret`` (8 characters or more) replaced by ``***``."""
    if len(secret) >= _MIN_SECRET_CHARS and secret in text:
        return text.replace(secret, "***")
    return text


def _error_class(status_code: int) -> type[APIStatusError]:
    if status_code >= 500:
        return InternalServerError
    return STATUS_ERRORS.get(status_code, APIStatusError)


def _snippet(response: httpx2.Response, secret: str) -> str:
    # Redact before cutting: a key straddling the cut would otherwise leave its first part.
    text = response.content[: _SNIPPET_CHARS * 4 + len(secret)].decode("utf-8", "replace")
    text = " ".join(redact(text, secret).split())
    if len(text) > _SNIPPET_CHARS:
        text = text[:_SNIPPET_CHARS] + "..."
    return text


def _describe_body(response: httpx2.Response, secret: str) -> tuple[str | None, str | None, str]:
    """The API error body's ``(id, name, message)``, or a description of whatever came."""
    reason = response.reason_phrase or "unexpected status"
    location = response.headers.get("location") if response.is_redirect else None
    if location is not None:
        # Not followed on purpose (the key must not travel to another host); say where to.
        reason = f"{reason}, redirect to {location!r} not followed"
    if not response.content:
        return None, None, f"{reason} (empty body)"
    try:
        data = decode_json(response.content)
    except (ValueError, RecursionError):
        content_type = response.headers.get("content-type", "no content type")
        return None, None, f"{reason} ({content_type} body: {_snippet(response, secret)!r})"
    message = _api_message(data)
    if message is not None:
        error_id, name = data.get("id"), data.get("name")
        return (
            error_id if isinstance(error_id, str) else None,
            name if isinstance(name, str) else None,
            message,
        )
    return None, None, f"{reason} (unexpected JSON body: {_snippet(response, secret)!r})"


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
    response: httpx2.Response, *, secret: str, notice: str | None = None
) -> APIStatusError:
    """The typed error for a non-2xx ``response`` (body already read).

    ``notice`` is appended to the message of a 404, or of a 401 saying the authorization
    header was missing: on a retired API version those mean the path, not the key.
    """
    error_id, name, message = _describe_body(response, secret)
    if notice and _needs_notice(response.status_code, message):
        message = f"{message} ({notice})"
    return _error_class(response.status_code)(
        redact(message, secret),
        response=response,
        error_id=redact(error_id, secret) if error_id else error_id,
        error_name=redact(name, secret) if name else name,
    )


def body_too_large_error(response: httpx2.Response, read: int) -> InvalidResponseError:
    """The error for a body that passed ``MAX_BODY_BYTES``; reading stopped at ``read`` bytes."""
    content_type = response.headers.get("content-type", "no content type")
    stopped = f"stopped reading after {read} bytes" if read else "not read"
    return InvalidResponseError(
        f"HTTP {response.status_code} from {response.request.url.path} carried a body of more "
        f"than {MAX_BODY_BYTES} bytes ({content_type}); {stopped}",
        response=response,
    )


def connection_error(
    exc: httpx2.HTTPError, *, request: httpx2.Request | None, secret: str
) -> APIError:
    """The typed error for an ``httpx2`` exception raised while sending or reading."""
    detail = redact(str(exc) or type(exc).__name__, secret)
    if isinstance(exc, httpx2.TimeoutException):
        return APITimeoutError(
            f"Request timed out ({type(exc).__name__}: {detail})", request=request
        )
    return APIConnectionError(f"Connection error ({type(exc).__name__}: {detail})", request=request)

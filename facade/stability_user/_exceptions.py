"""The SDK's exceptions: every failure a call can raise is one of these.

The hierarchy::

    StabilityError
    ├── ConfigurationError            (also a ValueError; nothing was sent)
    │   └── MissingAPIKeyError
    ├── ClientClosedError             (a call on a closed client; nothing was sent)
    ├── InsufficientCreditsError      (require_credits(): the balance is below the minimum)
    │   └── BudgetExceededError       (track_spend(budget=...): the label's budget would pass)
    └── APIError                      (something went wrong talking to the API)
        ├── APIConnectionError
        │   └── APITimeoutError
        ├── APIStatusError            (the API answered with a status other than 2xx)
        │   ├── BadRequestError           400
        │   ├── AuthenticationError       401
        │   ├── PermissionDeniedError     403
        │   ├── NotFoundError             404
        │   ├── RateLimitError            429 (retry_after)
        │   └── InternalServerError       5xx
        └── InvalidResponseError      (a 2xx whose body breaks the API's contract)

Lower-layer errors (httpx2's, JSON decoding's) are turned into these at one boundary,
``_http._error_mapping``, and chained as ``__cause__``. Every exception here survives ``pickle``
and ``copy.deepcopy`` (a worker process can send one back), with its response's status,
headers and body.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: ``stability-user status`` may need these on a prompt
if TYPE_CHECKING:
    from typing import Any

    import httpx2

    from .prices import Estimate

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ClientClosedError",
    "ConfigurationError",
    "InsufficientCreditsError",
    "InternalServerError",
    "InvalidResponseError",
    "MissingAPIKeyError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "StabilityError",
    "describe_error",
    "retry_after_seconds",
]


def _rebuild(cls: type[StabilityError], args: tuple[Any, ...]) -> StabilityError:
    # Unpickling: make the instance without __init__ (whose keyword-only arguments pickle
    # does not know), then let pickle restore __dict__.
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    return error


class StabilityError(Exception):
    """Base class of every exception this package raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args), self.__dict__)


class ClientClosedError(StabilityError):
    """The client was closed (``close()`` / ``aclose()``); nothing was sent."""


class ConfigurationError(StabilityError, ValueError):
    """The caller's arguments or environment are unusable; no request was sent.

    Attributes:
        cli_message: The same problem in the command line's terms (its options and
            environment variables rather than Python arguments), when they differ.
    """

    cli_message: str | None

    def __init__(self, message: str, *, cli_message: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = cli_message


class MissingAPIKeyError(ConfigurationError):
    """No API key was given and ``STABILITY_API_KEY`` is not set."""


class InsufficientCreditsError(StabilityError):
    """The balance is below what ``require_credits()`` asked for.

    The API answered; the credits are simply too few for the work about to start.

    Attributes:
        required: The credits asked for.
        available: The credits the organization has.
        organization: The organization; ``None`` for the default one.
        estimate: The ``stability_user.prices.Estimate`` asked for, when one was given (its
            plan is named in the message); ``None`` for a number of credits.
    """

    required: float
    available: float
    organization: str | None
    estimate: Estimate | None

    def __init__(
        self,
        message: str,
        *,
        required: float,
        available: float,
        organization: str | None,
        estimate: Estimate | None = None,
    ) -> None:
        super().__init__(message)
        self.required = required
        self.available = available
        self.organization = organization
        self.estimate = estimate


class BudgetExceededError(InsufficientCreditsError):
    """A label's spend in its budget's period, with the block's expected cost, would pass the
    budget: ``track_spend(label=..., budget=...)`` did not run the block (nothing was read).

    As an ``InsufficientCreditsError``: ``required`` is the expected cost (0 without one),
    ``available`` what is left of the budget (negative once it was passed), ``organization``
    the one the block would have measured.

    Attributes:
        label: The label.
        budget: Its budget, in credits per period.
        spent: What the label's jobs spent in the period so far.
        per: The period: ``"day"``, ``"week"`` or ``"month"`` (calendar, local time).
        expected: The block's expected cost; ``None`` when none was given.
    """

    label: str
    budget: float
    spent: float
    per: str
    expected: float | None

    def __init__(
        self,
        message: str,
        *,
        label: str,
        budget: float,
        spent: float,
        per: str,
        expected: float | None,
        organization: str | None,
    ) -> None:
        super().__init__(
            message,
            required=expected or 0.0,
            available=round(budget - spent, 10) + 0.0,
            organization=organization,
        )
        self.label = label
        self.budget = budget
        self.spent = spent
        self.per = per
        self.expected = expected


class APIError(StabilityError):
    """A request was attempted and failed.

    Attributes:
        message: A human-readable explanation.
        request: The last request sent, if one was built.
    """

    message: str
    request: httpx2.Request | None

    def __init__(self, message: str, *, request: httpx2.Request | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class APIConnectionError(APIError):
    """The API could not be reached, or the connection failed before a full answer arrived."""


class APITimeoutError(APIConnectionError):
    """A connect, read, write or pool timeout expired."""


class APIStatusError(APIError):
    """The API answered with a non-success status.

    Attributes:
        status_code: The HTTP status code.
        error_id: The ``id`` of the API's error body, when the body was one.
        error_name: The ``name`` of the API's error body (``unauthorized``, ``server_error``...).
        message: The API's ``message``, or a description of whatever body came instead.
        response: The ``httpx2.Response``, body read.
    """

    status_code: int
    error_id: str | None
    error_name: str | None
    response: httpx2.Response

    def __init__(
        self,
        message: str,
        *,
        response: httpx2.Response,
        error_id: str | None = None,
        error_name: str | None = None,
    ) -> None:
        super().__init__(message, request=response.request)
        self.response = response
        self.status_code = response.status_code
        self.error_id = error_id
        self.error_name = error_name

    def __str__(self) -> str:
        name = f"{self.error_name}: " if self.error_name else ""
        ident = f" (error id {self.error_id})" if self.error_id else ""
        return f"HTTP {self.status_code}: {name}{self.message}{ident}"


class BadRequestError(APIStatusError):
    """400: the API rejected the request's parameters."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, malformed or not valid."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this, for example read another organization's balance."""


class NotFoundError(APIStatusError):
    """404: the resource does not exist."""


class RateLimitError(APIStatusError):
    """429: too many requests; retried automatically before this is raised."""

    @property
    def retry_after(self) -> float | None:
        """The seconds the API asked to wait (its ``Retry-After`` header, in seconds or as an
        HTTP date), or ``None`` when it did not say."""
        return retry_after_seconds(self.response.headers)


class InternalServerError(APIStatusError):
    """5xx: the API failed; retried automatically before this is raised."""


class InvalidResponseError(APIError):
    """A success status whose body breaks the API's contract (not JSON, fields missing or mistyped).

    Attributes:
        status_code: The HTTP status code.
        response: The ``httpx2.Response``, body read.
    """

    status_code: int
    response: httpx2.Response

    def __init__(self, message: str, *, response: httpx2.Response) -> None:
        super().__init__(message, request=response.request)
        self.response = response
        self.status_code = response.status_code


class RememberedError(StabilityError):
    """A refresh's failure as the balance cache remembers it (``stability-user status``'s
    background refresh, another process's): its one line, whatever its class was.

    Not raised by a call: ``CachedBalance.error`` may hold one. ``refused`` is whether the API
    refused the key (401 or 403); ``configuration`` whether the settings were unusable.
    """

    refused: bool
    configuration: bool

    def __init__(self, line: str, *, refused: bool = False, configuration: bool = False) -> None:
        super().__init__(line)
        self.refused = refused
        self.configuration = configuration


def describe_error(error: StabilityError) -> str:
    """An error in one line, as the command line prints it: its class, the HTTP status if any,
    and its message (``AuthenticationError (HTTP 401): Incorrect API key provided: ...``)."""
    from ._text import printable  # the API's words: no control character reaches a terminal

    if isinstance(error, RememberedError):
        return printable(str(error))  # already that line
    if isinstance(error, APIStatusError):
        return f"{type(error).__name__} (HTTP {error.status_code}): {printable(error.message)}"
    return printable(f"{type(error).__name__}: {error}")


def retry_after_seconds(headers: httpx2.Headers, *, now: float | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or HTTP date), if any: what
    ``RateLimitError.retry_after`` says, and what the retry policy (``_http._retry``) waits."""
    import math  # here: a prompt's ``status`` loads this module and never needs them
    import time

    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        # The HTTP-date form is rare; its parser is not worth importing up front.
        from email.utils import parsedate_to_datetime

        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)

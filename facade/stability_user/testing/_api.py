"""The stand-in's behaviour: Stability's user API as a pure function of a request.

``StandInAPI.respond()`` answers exactly as the real API does (paths, headers, bodies, error
bodies); the in-process transport and the loopback server both call it, so the two ways of
using the stand-in cannot disagree. Its generation endpoints (``_generations``) charge what
Stability's document states (``stability_user.prices``) per successful result, and nothing
for a refused or failed call.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .._credits import credits_difference
from ._generations import GENERATIONS, FormError, accepted, generation_body, read_form, seed_of

if TYPE_CHECKING:
    from ._server import StandInServer
    from ._transport import StandInTransport

__all__ = [
    "ACCOUNT_PATH",
    "BALANCE_PATH",
    "REQUEST_LOG_SIZE",
    "SPEND_PATH",
    "RecordedRequest",
    "SAMPLE_API_KEY",
    "StandInAPI",
    "StandInOrganization",
    "StandInResponse",
]

ACCOUNT_PATH = "/v1/user/account"
BALANCE_PATH = "/v1/user/balance"
# The developer-preview paths, served with the same data.
_V1ALPHA_ACCOUNT_PATH = "/v1alpha/user/account"
_V1ALPHA_BALANCE_PATH = "/v1alpha/user/balance"
# The stand-in's own route (not Stability's): spend credits as a generation would, from another
# process. POST, the key in Authorization, the organization in an Organization header (else the
# account's default), the amount in ?credits=.
SPEND_PATH = "/_standin/spend"
SAMPLE_API_KEY = "standin-sample-key"
"""The key of ``StandInAPI.sample()``'s account; deliberately not shaped like a real key
(``sk-...``), so it can never be mistaken for one."""
# How many requests ``StandInAPI.requests`` keeps (the newest), so a long-running ``serve``
# does not grow without bound.
REQUEST_LOG_SIZE = 10_000

# Path -> endpoint, for both versions.
_ROUTES = {
    ACCOUNT_PATH: "account",
    BALANCE_PATH: "balance",
    _V1ALPHA_ACCOUNT_PATH: "account",
    _V1ALPHA_BALANCE_PATH: "balance",
    SPEND_PATH: "spend",
}
_ALLOWED_METHODS = {"account": "GET, HEAD", "balance": "GET, HEAD", "spend": "POST"}
# What inject_error() and inject_content_filter() take besides a generation's path.
_GENERATION = "generation"
_ERROR_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "permission_denied",
    402: "payment_required",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    429: "rate_limit_exceeded",
}


class HeaderLookup(Protocol):
    """Case-insensitive header access, as ``httpx2.Headers`` and ``http.client``'s message give."""

    def get(self, name: str, /) -> str | None:
        """The header's value, or ``None`` when absent."""
        ...

    def items(self) -> Iterable[tuple[str, str]]:
        """Every header as ``(name, value)``."""
        ...


@dataclass(frozen=True, slots=True)
class StandInOrganization:
    """An organization as the stand-in holds it: the API's fields plus its credits."""

    id: str
    name: str
    role: str = "MEMBER"
    is_default: bool = False
    credits: float = 0.0


@dataclass(frozen=True, slots=True)
class StandInResponse:
    """What the stand-in answers: status, headers and the body's bytes."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded."""
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request exactly as the stand-in received it.

    Attributes:
        method: The HTTP method.
        path: The path, without a query.
        organization: The ``Organization`` header, trimmed; ``None`` when absent or blank.
        authorized: Whether the ``Authorization`` header named a known key.
        authorization: The ``Authorization`` header as it arrived (``Bearer <key>`` or the
            bare key); left out of the repr.
        headers: Every header as it arrived, names lower-cased; left out of the repr.
    """

    method: str
    path: str
    organization: str | None
    authorized: bool
    authorization: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(slots=True)
class _Account:
    id: str
    email: str
    organizations: list[str]
    profile_picture: str | None


@dataclass(slots=True)
class _Fault:
    status: int
    path: str | None
    organization: str | None
    remaining: int | None
    name: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, endpoint: str, organization: str | None, path: str = "") -> bool:
        """Whether this fault answers a request to ``endpoint`` (``"account"``, ``"balance"``,
        or ``"generation"`` with the generation's ``path``) for ``organization``."""
        return (self.path is None or self.path in (endpoint, path)) and (
            self.organization is None or self.organization == organization
        )


@dataclass(slots=True)
class _Filter:
    """Generations whose result is to come back content-filtered."""

    path: str | None
    remaining: int | None


@dataclass(slots=True)
class _RateLimit:
    """The API's limit as the stand-in enforces it: ``requests`` per ``per_seconds`` seconds,
    counted across every key (as one address's requests would be), then 429 to everything for
    ``lockout`` seconds."""

    requests: int
    per_seconds: float
    lockout: float
    clock: Callable[[], float]
    arrivals: deque[float] = field(default_factory=deque)
    locked_until: float = float("-inf")

    def refuses(self) -> bool:
        now = self.clock()
        if now < self.locked_until:
            return True
        while self.arrivals and self.arrivals[0] <= now - self.per_seconds:
            self.arrivals.popleft()
        if len(self.arrivals) >= self.requests:
            self.locked_until = now + self.lockout
            return True
        self.arrivals.append(now)
        return False


class StandInAPI:
    """An in-memory stand-in for Stability's account and credits API, for tests and offline use.

    It serves the synchronous priced generation endpoints too (the paths of
    ``stability_user.prices``, ``POST`` of ``multipart/form-data``), each charging the
    organization (``Organization`` header, else the default) the catalogue's price per
    successful call: a refused call (400, 401, 402, 403, 406) or an injected failure costs
    nothing; an injected content filter (``inject_content_filter``) is a success, and charged.

    >>> api = StandInAPI()
    >>> api.add_account("test-key", email="a@example.com", organizations=[
    ...     StandInOrganization("org-1", "Mine", role="OWNER", is_default=True, credits=10)])
    >>> client = StabilityUser("test-key", transport=api.transport)   # in-process
    >>> with api.serve() as server:                                     # or on loopback
    ...     client = StabilityUser("test-key", base_url=server.url)

    Safe to share between threads; ``requests`` lists what it received.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._organizations: dict[str, StandInOrganization] = {}
        self._credits: dict[str, float] = {}
        self._faults: list[_Fault] = []
        self._filters: list[_Filter] = []
        self._seeds = 0
        self._rate_limit: _RateLimit | None = None
        self._requests: deque[RecordedRequest] = deque(maxlen=REQUEST_LOG_SIZE)

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received, oldest first (the newest ``REQUEST_LOG_SIZE`` of them)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self._requests.clear()

    @classmethod
    def sample(cls) -> StandInAPI:
        """A stand-in holding one account (key ``SAMPLE_API_KEY``) in three organizations."""
        api = cls()
        api.add_account(
            SAMPLE_API_KEY,
            id="user-standin-0001",
            email="ada@example.com",
            profile_picture="https://example.com/avatars/ada.png",
            organizations=[
                StandInOrganization("org-standin-personal", "Ada's studio", "OWNER", True, 125.5),
                StandInOrganization("org-standin-lumen", "Lumen Games", "MEMBER", False, 42.0),
                StandInOrganization("org-standin-lab", "Research Lab", "ADMIN", False, 3.25),
            ],
        )
        return api

    def add_account(
        self,
        api_key: str,
        *,
        email: str,
        organizations: Iterable[StandInOrganization],
        id: str | None = None,
        profile_picture: str | None = None,
    ) -> None:
        """Make ``api_key`` valid for an account in ``organizations`` (in this order)."""
        orgs = list(organizations)
        with self._lock:
            for org in orgs:
                self._organizations[org.id] = org
                self._credits[org.id] = float(org.credits)
            self._accounts[api_key] = _Account(
                id=id or f"user-{uuid.uuid4().hex[:12]}",
                email=email,
                organizations=[org.id for org in orgs],
                profile_picture=profile_picture,
            )

    def set_credits(self, organization_id: str, credits: float) -> None:
        """Change an organization's balance."""
        with self._lock:
            if organization_id not in self._organizations:
                raise KeyError(f"no organization {organization_id!r} in the stand-in")
            self._credits[organization_id] = float(credits)

    def spend(self, organization_id: str, credits: float) -> float:
        """Spend ``credits`` of an organization, as a generation would; returns what is left.

        Served, the same is ``POST /_standin/spend?credits=N`` with the account's key (and an
        ``Organization`` header, else its default organization), or, from a shell,
        ``python -m stability_user.testing spend N [--org ORG]``.

        Raises:
            KeyError: No such organization.
            ValueError: ``credits`` is not a positive, finite number, or more than the balance
                (the API would refuse the generation).
        """
        with self._lock:
            if organization_id not in self._organizations:
                raise KeyError(f"no organization {organization_id!r} in the stand-in")
            return self._debit(organization_id, credits)

    def _debit(self, org_id: str, credits: object) -> float:
        # Under self._lock.
        try:
            amount = float(credits)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            amount = float("nan")
        if not (0 < amount < float("inf")):
            raise ValueError(f"credits must be a positive number, not {credits!r}")
        left = self._credits[org_id]
        if amount > left:
            raise ValueError(f"organization {org_id} has {left:g} credits, fewer than {amount:g}")
        # As the API's ledger would: 0.3 - 0.1 leaves 0.2, not 0.19999999999999998.
        self._credits[org_id] = credits_difference(left, amount)
        return self._credits[org_id]

    def inject_error(
        self,
        status: int,
        *,
        endpoint: str | None = None,
        organization: str | None = None,
        times: int | None = 1,
        name: str | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests (``None``: all) with an API error.

        A generation that fails so charges nothing, as Stability charges nothing for a failed
        one.

        Args:
            status: The HTTP status, e.g. 500 or 429.
            endpoint: ``"account"``, ``"balance"``, ``"generation"`` (every generation
                endpoint) or one generation endpoint's path; ``None`` matches every one.
            organization: Only requests for this ``Organization`` header.
            times: How many matching requests fail; ``None`` for every one.
            name: The error body's ``name``; defaults to the API's name for ``status``.
            message: The error body's ``message``.
            headers: Extra response headers, e.g. ``{"Retry-After": "2"}``.
        """
        if endpoint is not None and endpoint not in ("account", "balance", _GENERATION):
            _check_generation(endpoint)
        fault = _Fault(
            status=status,
            path=endpoint,
            organization=organization,
            remaining=times,
            name=name or _ERROR_NAMES.get(status, "server_error" if status >= 500 else "error"),
            message=message or f"Injected error: HTTP {status}.",
            headers=dict(headers or {}),
        )
        with self._lock:
            self._faults.append(fault)

    def inject_content_filter(self, *, endpoint: str | None = None, times: int | None = 1) -> None:
        """Make the next ``times`` successful generations (``None``: all) come back
        content-filtered: ``finish-reason: CONTENT_FILTERED`` and a blurred result, charged as a
        success, as Stability's document describes it.

        Args:
            endpoint: A generation endpoint's path; ``None`` (or ``"generation"``) matches
                every one.
            times: How many generations are filtered; ``None`` for every one.
        """
        if endpoint is not None and endpoint != _GENERATION:
            _check_generation(endpoint)
        path = None if endpoint == _GENERATION else endpoint
        with self._lock:
            self._filters.append(_Filter(path, times))

    def limit_rate(
        self,
        requests: int | None = 150,
        per_seconds: float = 10.0,
        lockout: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Enforce the API's rate limit (off until called): past ``requests`` requests in any
        ``per_seconds`` seconds, answer 429 (the errors-list body) to every request for
        ``lockout`` seconds. Stability documents 150 per 10 s and a 60 s time-out, but not
        whether it counts per key or per address; the stand-in counts every key together.
        ``requests=None`` turns it off again.
        """
        with self._lock:
            self._rate_limit = (
                None
                if requests is None
                else _RateLimit(requests, float(per_seconds), float(lockout), clock)
            )

    def clear_errors(self) -> None:
        """Drop every injected error and content filter not yet used."""
        with self._lock:
            self._faults.clear()
            self._filters.clear()

    @property
    def transport(self) -> StandInTransport:
        """An ``httpx2`` transport (sync and async) answering from this stand-in in-process."""
        from ._transport import StandInTransport

        return StandInTransport(self)

    def serve(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0) -> StandInServer:
        """Serve this stand-in over HTTP on loopback; use as a context manager (``.url``).

        Args:
            host: The address to listen on.
            port: The port; 0 picks a free one.
            latency: Seconds every answer waits, as across a real network.
        """
        from ._server import StandInServer

        return StandInServer(self, host=host, port=port, latency=latency)

    def respond(
        self, method: str, path: str, headers: HeaderLookup, body: bytes = b""
    ) -> StandInResponse:
        """Answer one request, as the real API would.

        Header values are trimmed of surrounding whitespace (RFC 9110 5.5), so the loopback
        server and the in-process transport read the same values. ``HEAD`` is answered as
        ``GET`` without the body. ``path`` may carry a query (read by ``SPEND_PATH`` only);
        ``body`` is read by the generation endpoints.
        """
        path, _, query = path.partition("?")
        authorization = headers.get("Authorization")
        key = _key_from(authorization)
        organization = (headers.get("Organization") or "").strip() or None
        with self._lock:
            account = self._accounts.get(key) if key else None
            self._requests.append(
                RecordedRequest(
                    method,
                    path,
                    organization,
                    account is not None,
                    authorization,
                    {name.lower(): value for name, value in headers.items()},
                )
            )
            if path in GENERATIONS:
                answer = self._generation(
                    method, path, key, account, organization, headers=headers, body=body
                )
            else:
                answer = self._answer(method, path, key, account, organization, query=query)
        if method == "HEAD":
            return StandInResponse(
                answer.status,
                {**answer.headers, "Content-Length": str(len(answer.body))},
                b"",
            )
        return answer

    def _answer(
        self,
        method: str,
        path: str,
        key: str | None,
        account: _Account | None,
        organization: str | None,
        *,
        query: str = "",
    ) -> StandInResponse:
        endpoint = _ROUTES.get(path)
        if endpoint is None:
            return _error(404, "not_found", f"No route for {path}.")
        allowed = _ALLOWED_METHODS[endpoint]
        if method not in allowed.split(", "):
            return _error(
                405,
                "method_not_allowed",
                f"{method} is not allowed on {path}.",
                {"Allow": allowed},
            )
        refused = self._refused(endpoint, path, key, account, organization, fail=_error)
        if refused is not None:
            return refused
        assert account is not None  # a request without one was refused
        if endpoint == "account":
            return _ok(self._account_body(account))
        org_id = self._organization_of(account, organization)
        if org_id is None:
            return _forbidden(organization, _error)
        if endpoint == "spend":
            return self._spend_answer(org_id, query)
        return _ok({"credits": self._credits[org_id]})

    def _generation(
        self,
        method: str,
        path: str,
        key: str | None,
        account: _Account | None,
        organization: str | None,
        *,
        headers: HeaderLookup,
        body: bytes,
    ) -> StandInResponse:
        # Under self._lock. Every refusal comes before the charge: a 4xx costs nothing.
        if method != "POST":
            return _failed(405, "method_not_allowed", f"{method} is not allowed on {path}.")
        refused = self._refused(_GENERATION, path, key, account, organization, fail=_failed)
        if refused is not None:
            return refused
        assert account is not None  # a request without one was refused
        org_id = self._organization_of(account, organization)
        if org_id is None:
            return _forbidden(organization, _failed)
        generation = GENERATIONS[path]
        try:
            form = read_form(headers.get("Content-Type"), body)
        except FormError as error:
            return _failed(400, "bad_request", str(error))
        problem = generation.problem(form)
        price, problem = (None, problem) if problem else _price(path, form)
        if price is None:
            return _failed(400, "bad_request", problem or "")
        as_json = accepted(headers.get("Accept"), generation.output)
        if as_json is None:
            return _failed(
                406,
                "not_acceptable",
                f"accept: must be {generation.output}/* or application/json",
            )
        left = self._credits[org_id]
        if price > left:
            return _failed(
                402,
                "payment_required",
                f"You lack sufficient credits to make this request ({price:g} credits; "
                f"{left:g} left in organization {org_id}). Please purchase more credits at "
                "https://platform.stability.ai/account/credits and try again.",
            )
        self._debit(org_id, price)
        self._seeds += 1
        answer_headers, answer = generation_body(
            generation,
            form,
            as_json,
            self._take_filter(path),
            seed_of(form, 2_654_435_761 * self._seeds),
        )
        return StandInResponse(200, answer_headers, answer)

    def _refused(
        self,
        endpoint: str,
        path: str,
        key: str | None,
        account: _Account | None,
        organization: str | None,
        *,
        fail: _Fail,
    ) -> StandInResponse | None:
        """The answer to a request refused before its endpoint is asked (the rate limit, an
        injected fault, a missing or unknown key), in ``fail``'s body; ``None`` to go on."""
        # Under self._lock. Injected errors and the rate limit stand for the API's; the
        # stand-in's own route has neither.
        if endpoint != "spend":
            limit = self._rate_limit
            if limit is not None and limit.refuses():
                return _error(  # the API's errors-list body, whatever the endpoint
                    429,
                    "rate_limit_exceeded",
                    f"You have exceeded the rate limit of {limit.requests} requests every "
                    f"{limit.per_seconds:g} seconds; you are timed out for "
                    f"{limit.lockout:g} seconds.",
                )
            fault = self._take_fault(endpoint, organization, path)
            if fault is not None:
                return fail(fault.status, fault.name, fault.message, fault.headers)
        if not key:
            return fail(401, "unauthorized", "missing authorization header", None)
        if account is None:
            return fail(
                401,
                "unauthorized",
                f"Incorrect API key provided: {_masked(key)}. "
                "You can find your API key at https://stability.ai.",
                None,
            )
        return None

    def _organization_of(self, account: _Account, organization: str | None) -> str | None:
        """The organization a request is for (its header, else the account's default), if the
        account is in it."""
        org_id = organization or self._default_organization(account)
        return org_id if org_id is not None and org_id in account.organizations else None

    def _take_filter(self, path: str) -> bool:
        for each in self._filters:
            if each.path in (None, path):
                if each.remaining is not None:
                    each.remaining -= 1
                    if each.remaining <= 0:
                        self._filters.remove(each)
                return True
        return False

    def _spend_answer(self, org_id: str, query: str) -> StandInResponse:
        # Under self._lock, as every answer.
        from urllib.parse import parse_qs

        amounts = parse_qs(query).get("credits", [])
        try:
            left = self._debit(org_id, amounts[0] if len(amounts) == 1 else None)
        except ValueError as err:
            return _error(400, "bad_request", f"{err}.")
        return _ok({"organization": org_id, "credits": left})

    def _take_fault(self, endpoint: str, organization: str | None, path: str = "") -> _Fault | None:
        for fault in self._faults:
            if fault.matches(endpoint, organization, path):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _default_organization(self, account: _Account) -> str | None:
        for org_id in account.organizations:
            if self._organizations[org_id].is_default:
                return org_id
        return account.organizations[0] if account.organizations else None

    def _account_body(self, account: _Account) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": account.id,
            "email": account.email,
            "organizations": [
                {
                    "id": org.id,
                    "name": org.name,
                    "role": org.role,
                    "is_default": org.is_default,
                }
                for org in (self._organizations[org_id] for org_id in account.organizations)
            ],
        }
        if account.profile_picture is not None:
            body["profile_picture"] = account.profile_picture
        return body


def _ok(body: dict[str, Any]) -> StandInResponse:
    return StandInResponse(200, {"Content-Type": "application/json"}, json.dumps(body).encode())


def _key_from(authorization: str | None) -> str | None:
    """The key in an ``Authorization`` value: ``Bearer <key>`` (v1) or the bare key (v1alpha)."""
    value = (authorization or "").strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value or None


def _masked(key: str) -> str:
    """The key as the API quotes it in a 401: its first 7 and last 4 characters."""
    if len(key) < 16:
        return "*" * len(key)
    return key[:7] + "*" * (len(key) - 11) + key[-4:]


# How an endpoint writes an error: _error (the user API's body) or _failed (the v2beta one).
_Fail = Callable[[int, str, str, Mapping[str, str] | None], StandInResponse]


def _forbidden(organization: str | None, fail: _Fail) -> StandInResponse:
    return fail(
        403, "permission_denied", f"You do not have access to organization {organization}.", None
    )


def _check_generation(endpoint: str) -> None:
    if endpoint not in GENERATIONS:
        raise ValueError(
            "endpoint must be 'account', 'balance', 'generation' or a generation endpoint's "
            f"path (one of {', '.join(GENERATIONS)}), not {endpoint!r}"
        )


def _price(path: str, form: Mapping[str, str]) -> tuple[float | None, str | None]:
    """What a call of ``path`` with ``form`` costs (the catalogue's, at its model and its
    formula's parameter), or the 400's message for a model or parameter it does not take."""
    from .._exceptions import ConfigurationError
    from ..prices._catalogue import catalogue_price, models_of

    models = models_of(path)
    model = form.get("model") if models else None
    if model is not None and model not in models:
        return None, f"model: must be one of {', '.join(models)}"
    price = catalogue_price(path, model, {})
    formula = price.formula
    if formula is None or formula.parameter not in form:
        return price.credits, None
    text = form[formula.parameter].strip()
    try:
        value = int(text) if text.isdigit() else text
        return catalogue_price(path, model, {formula.parameter: value}).credits, None
    except ConfigurationError:
        return None, f"{formula.parameter}: must be a positive whole number, not {text!r}"


def _failed(
    status: int, name: str, message: str, headers: Mapping[str, str] | None = None
) -> StandInResponse:
    """A generation endpoint's error: the v2beta body, ``{"id", "name", "errors": [...]}``."""
    body = {"id": uuid.uuid4().hex, "name": name, "errors": [message]}
    extra = dict(headers or {})
    if status == 405:
        extra.setdefault("Allow", "POST")
    return StandInResponse(
        status, {"Content-Type": "application/json", **extra}, json.dumps(body).encode()
    )


def _error(
    status: int, name: str, message: str, headers: Mapping[str, str] | None = None
) -> StandInResponse:
    body: dict[str, Any]
    if status == 429:
        # The API's rate-limit body carries a list of errors instead of one message.
        body = {"id": name, "name": name, "errors": [message]}
    else:
        body = {"id": uuid.uuid4().hex, "name": name, "message": message}
    return StandInResponse(
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(body).encode(),
    )

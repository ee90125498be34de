"""The tools an agent calls: what each returns, how each fails, what each tells the agent.

Every tool reads and never spends: read-only, idempotent, not destructive, open-world when it
asks Stability's API (``list_prices`` reads the price catalogue alone). Each returns structured
content under an output schema; a failure is a tool result marked as an error, with the one
line the command line would print. Only the public API is used (``stability_user`` and
``stability_user.prices``).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Annotated, Any, NotRequired, TypeVar

import anyio
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, WithJsonSchema

# typing_extensions' (an mcp dependency): pydantic reads typing's nested TypedDicts only on 3.12+.
from typing_extensions import TypedDict

from .. import (
    APIStatusError,
    APITimeoutError,
    AsyncStabilityUser,
    ConfigurationError,
    InsufficientCreditsError,
    RateLimitError,
    StabilityError,
)
from ..prices import catalogue, estimate, price

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mcp.server.mcpserver import MCPServer

    from .. import Account, Organization

__all__ = ["TOOL_TIMEOUT", "describe_error", "register_tools"]

TOOL_TIMEOUT = 30.0
"""Seconds a tool call takes at most, whatever the API does (retries and their waits
included): under the 60 s that MCP clients commonly allow a request, so that the agent reads
the one-line ``APITimeoutError`` rather than a timeout of its own."""

_Result = TypeVar("_Result")

FREE = (
    " Free to call: reading the balance spends no credits. Call it before an expensive "
    "generation rather than finding out from a failed one."
)

# An organization argument, as agents should send it; checked by the client, whose message
# (one line) is the error result, rather than by the SDK's argument model (several lines).
OrganizationArgument = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": ["string", "null"],
            "description": "An organization id such as org-123456 (from get_account); "
            "omit it for the key's default organization.",
        }
    ),
]
MinimumArgument = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": "number",
            "minimum": 0,
            "description": "The credits the work about to start needs.",
        }
    ),
]


PlanArgument = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": {"type": "integer", "minimum": 0},
            "description": 'How many calls of each service, e.g. {"ultra": 100, "core": '
            "20}; the services as list_prices names them.",
        }
    ),
]
NamesArgument = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": ["array", "null"],
            "items": {"type": "string"},
            "description": "Services (such as ultra or core) or endpoint paths; omit it for all.",
        }
    ),
]


class PriceResult(TypedDict):
    """What one call of a service costs, per successful result (``Price.to_dict()``)."""

    name: str
    credits: Annotated[float, Field(description="Per successful result, at the defaults.")]
    method: str
    path: str
    model: str | None
    formula: Annotated[
        str | None, Field(description="How the credits depend on a parameter, if they do.")
    ]
    parameter: str | None
    default: int | None
    parameter_value: int | None
    source: str
    stated: Annotated[str, Field(description="What Stability's document says, quoted.")]
    overridden: Annotated[bool, Field(description="The operator's own rate, not Stability's.")]


class DocumentResult(TypedDict):
    """The Stability document the prices were read from."""

    url: str | None
    copied: str | None
    sha256: str


class PricesResult(TypedDict):
    """Prices per successful result (failed calls are free), with where they come from."""

    prices: list[PriceResult]
    document: DocumentResult
    overrides: Annotated[
        str | None, Field(description="The operator's STABILITY_PRICES file, if one is used.")
    ]


class EstimateLineResult(TypedDict):
    """One service of the plan (``EstimateLine.to_dict()``)."""

    name: str
    count: int
    credits_each: float
    credits: float
    method: str
    path: str
    model: str | None
    parameter_value: int | None
    overridden: bool


class EstimateResult(TypedDict):
    """What the plan costs, the balance, and whether it covers the plan."""

    plan: str
    total: float
    lines: list[EstimateLineResult]
    organization: str | None
    balance: float
    left: Annotated[float, Field(description="balance - total; negative when short.")]
    enough: Annotated[bool, Field(description="Whether balance >= total.")]
    overrides: str | None


class BalanceResult(TypedDict):
    """An organization's credits; organization is null for the key's default one."""

    organization: str | None
    credits: float


class OrganizationResult(TypedDict):
    """An organization of the account."""

    id: str
    name: str
    role: str
    is_default: bool


class OrganizationBalanceResult(OrganizationResult):
    """An organization with its credits; when they could not be read, null, and error says why."""

    credits: float | None
    error: str | None


class BalancesResult(TypedDict):
    """Every organization with its credits, and the total of those that could be read."""

    organizations: list[OrganizationBalanceResult]
    total_credits: float


class AccountResult(TypedDict):
    """The account behind the key: its id and its organizations."""

    id: str
    organizations: list[OrganizationResult]


class AccountWithEmailResult(AccountResult):
    """The account behind the key: its id, organizations, email address and picture."""

    email: str
    profile_picture: NotRequired[str]


class CreditsCheckResult(TypedDict):
    """Whether the organization has at least the credits required, with the figures."""

    enough: Annotated[bool, Field(description="Whether available >= required.")]
    required: float
    available: float
    organization: str | None


def _read_only(title: str, *, open_world: bool = True) -> ToolAnnotations:
    return ToolAnnotations(
        title=title,
        read_only_hint=True,
        destructive_hint=False,
        idempotent_hint=True,
        open_world_hint=open_world,
    )


def describe_error(error: StabilityError) -> str:
    """An error as the command line prints it: one line, the key never in it."""
    if isinstance(error, ConfigurationError):
        return f"{type(error).__name__}: {error}"
    if isinstance(error, APIStatusError):
        text = f"{type(error).__name__} (HTTP {error.status_code}): {error.message}"
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            text += f" Retry after {error.retry_after:g} s."
        return text
    return f"{type(error).__name__}: {error}"


def _answer(data: Any) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(data))], structured_content=data
    )


def _failure(error: StabilityError) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=describe_error(error))], is_error=True
    )


def _organization(org: Organization) -> OrganizationResult:
    return {"id": org.id, "name": org.name, "role": org.role, "is_default": org.is_default}


def _account(account: Account, share_email: bool) -> AccountResult | AccountWithEmailResult:
    shown: dict[str, Any] = {
        "id": account.id,
        "organizations": [_organization(org) for org in account.organizations],
    }
    if share_email:
        shown["email"] = account.email
        if account.profile_picture is not None:
            shown["profile_picture"] = account.profile_picture
    return shown  # type: ignore[return-value]


def register_tools(
    server: MCPServer,
    client: AsyncStabilityUser,
    *,
    share_email: bool,
    tool_timeout: float = TOOL_TIMEOUT,
) -> None:
    """Add the tools to ``server``, each calling ``client`` and answering within
    ``tool_timeout`` seconds."""

    async def bounded(call: Awaitable[_Result]) -> _Result:
        """``call``'s result, or ``APITimeoutError`` once ``tool_timeout`` has passed."""
        try:
            with anyio.fail_after(tool_timeout):
                return await call
        except TimeoutError:
            raise APITimeoutError(
                f"No answer from the API within {tool_timeout:g} s (the tool call's timeout)."
            ) from None

    async def get_balance(
        organization: OrganizationArgument = None,
    ) -> Annotated[CallToolResult, BalanceResult]:
        try:
            balance = await bounded(client.get_balance(organization))
        except StabilityError as error:
            return _failure(error)
        return _answer({"organization": organization or client.organization, **balance.to_dict()})

    async def get_balances() -> Annotated[CallToolResult, BalancesResult]:
        try:
            results = await bounded(client.get_balances())
        except StabilityError as error:
            return _failure(error)
        organizations = [
            {
                **_organization(entry.organization),
                "credits": None if entry.balance is None else entry.balance.credits,
                "error": None if entry.error is None else describe_error(entry.error),
            }
            for entry in results
        ]
        # Summed as the SDK sums credits (exactly, to 10 decimals): 0.1 + 0.2 is 0.3 here.
        total = round(
            math.fsum(entry.balance.credits for entry in results if entry.balance is not None), 10
        )
        return _answer({"organizations": organizations, "total_credits": total})

    async def get_account() -> CallToolResult:
        try:
            account = await bounded(client.get_account())
        except StabilityError as error:
            return _failure(error)
        return _answer(_account(account, share_email))

    # The output schema follows the operator's choice: no email field unless it is shared.
    get_account.__annotations__["return"] = Annotated[
        CallToolResult, AccountWithEmailResult if share_email else AccountResult
    ]

    async def check_credits(
        minimum: MinimumArgument, organization: OrganizationArgument = None
    ) -> Annotated[CallToolResult, CreditsCheckResult]:
        try:
            balance = await bounded(client.require_credits(minimum, organization))
        except InsufficientCreditsError as short:
            return _answer(
                {
                    "enough": False,
                    "required": short.required,
                    "available": short.available,
                    "organization": short.organization,
                }
            )
        except StabilityError as error:
            return _failure(error)
        return _answer(
            {
                "enough": True,
                "required": float(minimum),
                "available": balance.credits,
                "organization": organization or client.organization,
            }
        )

    async def list_prices(names: NamesArgument = None) -> Annotated[CallToolResult, PricesResult]:
        try:
            if names is not None and not (
                isinstance(names, list) and all(isinstance(name, str) for name in names)
            ):
                raise ConfigurationError("names must be a list of service names.")
            found = catalogue()
            wanted = set(names or ())
            prices = [
                each
                for each in found.prices
                if not wanted or each.name in wanted or each.path in wanted
            ]
            for name in sorted(wanted):
                price(name)  # an unknown one's error names the closest ones
        except StabilityError as error:
            return _failure(error)
        document = found.document
        return _answer(
            {
                "prices": [each.to_dict() for each in prices],
                "document": {
                    "url": document.url,
                    "copied": document.copied,
                    "sha256": document.sha256,
                },
                "overrides": found.overrides,
            }
        )

    async def estimate_cost(
        plan: PlanArgument, organization: OrganizationArgument = None
    ) -> Annotated[CallToolResult, EstimateResult]:
        try:
            if not isinstance(plan, dict):
                raise ConfigurationError(
                    'plan must be an object of service names to counts, such as {"ultra": 100}.'
                )
            planned = estimate(plan)
            balance = await bounded(client.get_balance(organization))
        except StabilityError as error:
            return _failure(error)
        left = round(balance.credits - planned.total, 10)
        return _answer(
            {
                "plan": planned.plan,
                "total": planned.total,
                "lines": [line.to_dict() for line in planned.lines],
                "organization": organization or client.organization,
                "balance": balance.credits,
                "left": left + 0.0,
                "enough": balance.credits >= planned.total,
                "overrides": catalogue().overrides if planned.overridden else None,
            }
        )

    account_text = (
        "The account behind the operator's Stability AI key: its id, and its organizations "
        "(ids for the other tools, names, roles, which is the default)"
        + (", with the email address and profile picture." if share_email else ".")
    )
    tools: list[tuple[Callable[..., Any], str, str]] = [
        (
            get_balance,
            "Stability credits",
            "The Stability AI credit balance of an organization (the key's default one unless "
            "given)." + FREE,
        ),
        (
            get_balances,
            "Stability credits, every organization",
            "Every organization of the account with its Stability AI credits, and their total; "
            "an organization whose balance could not be read carries an error." + FREE,
        ),
        (get_account, "Stability account", account_text + FREE),
        (
            check_credits,
            "Enough Stability credits?",
            "Whether an organization has at least `minimum` Stability AI credits, with the "
            "figures: answers yes or no rather than failing. Use it to decide whether to start "
            "an expensive generation." + FREE,
        ),
        (
            list_prices,
            "Stability prices",
            "What each Stability AI service costs in credits per successful result (failed "
            "calls are free), as Stability's own API document states it, with the document's "
            "date and hash and the operator's own rates where they apply. Use it to say what "
            "a generation will cost before starting it. Free to call: it spends no credits "
            "and asks nothing of the API.",
        ),
        (
            estimate_cost,
            "Cost of a plan, against the balance",
            "What a plan of calls costs (e.g. 100 ultra and 20 core) at Stability's prices, "
            "and whether the organization's balance covers it: the total, each line, the "
            "balance, what is left (negative when short). Use it before a batch of "
            "generations." + FREE,
        ),
    ]
    for function, title, description in tools:
        # list_prices reads the catalogue alone: nothing outside is asked.
        annotations = _read_only(title, open_world=function is not list_prices)
        server.add_tool(
            function,
            name=function.__name__,
            title=title,
            description=description,
            annotations=annotations,
            structured_output=True,  # a return type without a schema fails here, not silently
        )

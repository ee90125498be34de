"""The immutable, typed models calls return; ``to_dict()`` gives back the API's JSON shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._exceptions import StabilityError

__all__ = ["Account", "Balance", "Organization", "OrganizationBalance"]


@dataclass(frozen=True, slots=True)
class Organization:
    """An organization the account belongs to.

    Attributes:
        id: The organization's id, e.g. ``org-123456``, as ``get_balance()`` takes it.
        name: Its display name.
        role: The account's role in it, e.g. ``MEMBER`` or ``OWNER``.
        is_default: Whether balance calls without an organization are scoped to it.
    """

    id: str
    name: str
    role: str
    is_default: bool

    def to_dict(self) -> dict[str, Any]:
        """The API's ``OrganizationMembership`` JSON object."""
        return {"id": self.id, "name": self.name, "role": self.role, "is_default": self.is_default}


@dataclass(frozen=True, slots=True)
class Account:
    """The account behind an API key.

    Attributes:
        id: The user's id.
        email: The user's email address.
        organizations: The organizations the user belongs to, in the API's order.
        profile_picture: URL of the profile picture, or ``None`` when the API gives none.
    """

    id: str
    email: str
    organizations: tuple[Organization, ...]
    profile_picture: str | None = None

    @property
    def default_organization(self) -> Organization | None:
        """The organization marked default, or ``None`` if none is."""
        return next((org for org in self.organizations if org.is_default), None)

    def to_dict(self) -> dict[str, Any]:
        """The API's ``AccountResponseBody`` JSON object."""
        data: dict[str, Any] = {
            "id": self.id,
            "email": self.email,
            "organizations": [org.to_dict() for org in self.organizations],
        }
        if self.profile_picture is not None:
            data["profile_picture"] = self.profile_picture
        return data


@dataclass(frozen=True, slots=True)
class Balance:
    """A credit balance.

    Attributes:
        credits: Credits left, as the API reports them (fractional).
    """

    credits: float

    def to_dict(self) -> dict[str, Any]:
        """The API's ``BalanceResponseBody`` JSON object."""
        return {"credits": self.credits}


@dataclass(frozen=True, slots=True)
class OrganizationBalance:
    """One organization paired with its balance, or with the error that kept it from us.

    Exactly one of ``balance`` and ``error`` is set.
    """

    organization: Organization
    balance: Balance | None
    error: StabilityError | None = None

    @property
    def credits(self) -> float | None:
        """The organization's credits, or ``None`` when its balance could not be fetched."""
        return None if self.balance is None else self.balance.credits

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "name", "credits"}``, plus ``"error"`` when the balance failed."""
        data: dict[str, Any] = {
            "id": self.organization.id,
            "name": self.organization.name,
            "credits": self.credits,
        }
        if self.error is not None:
            data["error"] = f"{type(self.error).__name__}: {self.error}"
        return data

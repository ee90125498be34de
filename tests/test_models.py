"""Models: immutable, typed, and ``to_dict()`` gives the API's JSON shape back."""

from __future__ import annotations

import dataclasses

import httpx2
import pytest

from stability_user import Account, Balance, Organization, OrganizationBalance, RateLimitError

# Quick tests: a tight ceiling, so a loop that never ends fails fast.
pytestmark = pytest.mark.timeout(10)

ORG_A = Organization("org-a", "A", "OWNER", True)
ORG_B = Organization("org-b", "B", "MEMBER", False)


def test_models_are_frozen_and_slotted() -> None:
    account = Account("u", "e@x.org", (ORG_A,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        account.email = "other"  # type: ignore[misc]
    for model in (account, ORG_A, Balance(1.0)):
        assert not hasattr(model, "__dict__")
    assert hash(ORG_A) == hash(Organization("org-a", "A", "OWNER", True))


def test_to_dict_round_trips_the_api_shape() -> None:
    account = Account("u", "e@x.org", (ORG_A, ORG_B), "https://x.org/p.png")
    assert account.to_dict() == {
        "id": "u",
        "email": "e@x.org",
        "organizations": [
            {"id": "org-a", "name": "A", "role": "OWNER", "is_default": True},
            {"id": "org-b", "name": "B", "role": "MEMBER", "is_default": False},
        ],
        "profile_picture": "https://x.org/p.png",
    }
    assert "profile_picture" not in Account("u", "e", ()).to_dict()
    assert Balance(2.5).to_dict() == {"credits": 2.5}


def test_default_organization() -> None:
    assert Account("u", "e", (ORG_B, ORG_A)).default_organization == ORG_A
    assert Account("u", "e", (ORG_B,)).default_organization is None


def test_organization_balance() -> None:
    ok = OrganizationBalance(ORG_A, Balance(3.0))
    assert ok.credits == 3.0
    assert ok.to_dict() == {"id": "org-a", "name": "A", "credits": 3.0}
    request = httpx2.Request("GET", "https://api.stability.ai/v1/user/balance")
    error = RateLimitError("slow down", response=httpx2.Response(429, request=request))
    failed = OrganizationBalance(ORG_B, None, error)
    assert failed.credits is None
    assert failed.to_dict() == {
        "id": "org-b",
        "name": "B",
        "credits": None,
        "error": "RateLimitError: HTTP 429: slow down",
    }

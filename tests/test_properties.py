"""Property: whatever the API answers, a call returns a valid model or raises a StabilityError."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stability_user import (
    Account,
    AsyncStabilityUser,
    Balance,
    InvalidResponseError,
    StabilityError,
    StabilityUser,
)
from stability_user.testing import instant_retries

# At least 2,000 examples per run, CI or not: each costs well under a millisecond.
EXAMPLES = 2_000

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
organization = st.fixed_dictionaries(
    {"id": st.text(max_size=8), "name": st.text(max_size=8), "role": st.text(max_size=8)},
    optional={"is_default": st.booleans() | json_values},
)
account_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=8) | json_values,
        "email": st.text(max_size=8) | json_values,
        "organizations": st.lists(organization | json_values, max_size=3) | json_values,
        "profile_picture": st.text(max_size=8) | json_values,
        "extra": json_values,
    },
)
balance_like = st.fixed_dictionaries(
    {},
    optional={
        "credits": st.floats() | st.integers() | json_values,
        "extra": json_values,
    },
)
error_like = st.fixed_dictionaries(
    {}, optional={"id": json_values, "name": json_values, "message": json_values}
)


def encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    json_values.map(encode),
    account_like.map(encode),
    balance_like.map(encode),
    error_like.map(encode),
    st.integers(min_value=1, max_value=5000).map(lambda n: b"[" * n),
)
statuses = st.one_of(
    st.sampled_from([200, 200, 201, 204, 400, 401, 403, 404, 408, 409, 429, 500, 503]),
    st.integers(min_value=100, max_value=999),
)
headers = st.dictionaries(
    st.sampled_from(["Retry-After", "Content-Type", "Content-Encoding-Ignored"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    max_size=2,
)
exchanges = st.lists(st.tuples(statuses, bodies, headers), min_size=1, max_size=2)


class Script:
    """A transport answering the current example's responses in turn."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, bytes, dict[str, str]]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        status, content, extra = self.answers.pop(0) if self.answers else (599, b"", {})
        return httpx2.Response(status, content=content, headers=extra)


@pytest.fixture(scope="module")
def doors() -> Iterator[tuple[Script, StabilityUser, AsyncStabilityUser, asyncio.Runner]]:
    script = Script()
    transport = httpx2.MockTransport(script)
    with (
        asyncio.Runner() as runner,
        StabilityUser("k", max_retries=1, transport=transport) as sync_client,
    ):
        async_client = AsyncStabilityUser("k", max_retries=1, transport=transport)
        yield script, sync_client, async_client, runner
        runner.run(async_client.aclose())


def check(result: Any, operation: str) -> None:
    if operation == "get_account":
        assert isinstance(result, Account)
        assert all(isinstance(o.is_default, bool) for o in result.organizations)
    else:
        assert isinstance(result, Balance)
        assert isinstance(result.credits, float)
        assert math.isfinite(result.credits)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    answers=exchanges,
    operation=st.sampled_from(["get_account", "get_balance"]),
    door=st.sampled_from(["sync", "async"]),
)
def test_any_answer_gives_a_model_or_a_stability_error(
    doors: tuple[Script, StabilityUser, AsyncStabilityUser, asyncio.Runner],
    answers: list[tuple[int, bytes, dict[str, str]]],
    operation: str,
    door: str,
) -> None:
    script, sync_client, async_client, runner = doors
    script.answers = list(answers)
    with instant_retries():
        try:
            if door == "sync":
                result = getattr(sync_client, operation)()
            else:
                result = runner.run(getattr(async_client, operation)())
        except StabilityError as error:
            assert str(error)
            if isinstance(error, InvalidResponseError):
                assert 200 <= error.status_code < 300
            return
    check(result, operation)
    assert any(200 <= status < 300 for status, _, _ in answers)

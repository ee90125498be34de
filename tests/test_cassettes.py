"""The recorded cassettes: replayed through every door, free of secrets, true to the spec."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from stability_user import (
    Account,
    AuthenticationError,
    Balance,
    InternalServerError,
    Organization,
)
from stability_user._constants import API_KEY_PLACEHOLDER
from support.cassettes import (
    CASSETTE_DIR,
    KEY_PATTERN,
    MASKED_KEY_PLACEHOLDER,
    PATHS,
    SCENARIO_API_VERSIONS,
    SCENARIOS,
    SOURCE_PREFIX,
    cassette_path,
)
from support.paths import PATHS as DOORS
from support.paths import call_via

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
ALL_CASSETTES = sorted(CASSETTE_DIR.glob("*.yaml"))
# Tests replay against the production URL: the cassettes must serve it with no network.
KEY = "replay-key"


def interactions(path: Path) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text())["interactions"]


def body(interaction: dict[str, Any]) -> Any:
    return json.loads(interaction["response"]["body"]["string"])


def test_every_scenario_is_recorded_through_every_path() -> None:
    expected = {cassette_path(s, p) for s in SCENARIOS for p in PATHS}
    assert expected == set(ALL_CASSETTES)


@pytest.mark.parametrize("path", DOORS)
def test_account(replay: Any, path: str) -> None:
    recorded = body(interactions(cassette_path("account", path))[0])
    with replay("account", path):
        account = call_via(path, "get_account", api_key=KEY)
    assert isinstance(account, Account)
    assert account.to_dict() == recorded
    assert account.email == recorded["email"]
    assert account.organizations[0] == Organization(**recorded["organizations"][0])
    assert account.default_organization is not None
    assert account.default_organization.is_default


@pytest.mark.parametrize("path", DOORS)
def test_balance_of_the_default_organization(replay: Any, path: str) -> None:
    (interaction,) = interactions(cassette_path("balance-default", path))
    assert "organization" not in {name.lower() for name in interaction["request"]["headers"]}
    with replay("balance-default", path):
        balance = call_via(path, "get_balance", api_key=KEY)
    assert balance == Balance(credits=float(body(interaction)["credits"]))


@pytest.mark.parametrize("path", DOORS)
def test_balance_of_a_named_organization(replay: Any, path: str) -> None:
    (interaction,) = interactions(cassette_path("balance-org", path))
    headers = {k.lower(): v for k, v in interaction["request"]["headers"].items()}
    (organization,) = headers["organization"]
    with replay("balance-org", path):
        balance = call_via(path, "get_balance", organization, api_key=KEY)
    assert balance.credits == body(interaction)["credits"]


@pytest.mark.parametrize("path", DOORS)
def test_the_organization_header_takes_part_in_matching(replay: Any, path: str) -> None:
    # The default-organization cassette must not answer a request for another organization.
    from vcr.errors import CannotOverwriteExistingCassetteException

    with (
        replay("balance-default", path),
        pytest.raises(CannotOverwriteExistingCassetteException),
    ):
        call_via(path, "get_balance", "org-not-in-the-cassette", api_key=KEY)


@pytest.mark.parametrize("path", DOORS)
def test_invalid_key(replay: Any, path: str) -> None:
    (interaction,) = interactions(cassette_path("invalid-key", path))
    with replay("invalid-key", path), pytest.raises(AuthenticationError) as caught:
        call_via(path, "get_account", api_key="sk-wrong")
    assert caught.value.status_code == 401
    assert caught.value.error_name == body(interaction)["name"] == "unauthorized"
    assert caught.value.error_id == body(interaction)["id"]
    assert caught.value.message == body(interaction)["message"]


@pytest.mark.parametrize("path", DOORS)
def test_server_error_is_retried_then_raised(replay: Any, waits: list[float], path: str) -> None:
    recorded = interactions(cassette_path("server-error", path))
    assert len(recorded) == 3  # the first attempt and the default two retries
    with replay("server-error", path), pytest.raises(InternalServerError) as caught:
        call_via(path, "get_account", api_key=KEY)
    assert caught.value.status_code == 500
    assert caught.value.error_name == "server_error"
    assert len(waits) == 2


def test_the_readme_snippet_runs_against_a_replayed_cassette(
    replay: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stability_user import get_account, get_balance

    monkeypatch.setenv("STABILITY_API_KEY", KEY)
    with replay("account", "module"):
        account = get_account()
    with replay("balance-default", "module"):
        credits = get_balance().credits
    with replay("balance-org", "module"):
        org_credits = get_balance(organization="org-standin-lumen").credits
    assert account.email
    assert [o.name for o in account.organizations]
    assert isinstance(credits, float)
    assert isinstance(org_credits, float)


@pytest.mark.parametrize("path", DOORS)
def test_v1alpha_account_and_balance(replay: Any, path: str) -> None:
    (account_interaction,) = interactions(cassette_path("v1alpha-account", path))
    (balance_interaction,) = interactions(cassette_path("v1alpha-balance", path))
    # Matching includes the path: these cassettes answer only the v1alpha paths.
    with replay("v1alpha-account", path):
        account = call_via(path, "get_account", api_key=KEY, api_version="v1alpha")
    with replay("v1alpha-balance", path):
        balance = call_via(path, "get_balance", api_key=KEY, api_version="v1alpha")
    assert account.to_dict() == body(account_interaction)
    assert balance == Balance(credits=float(body(balance_interaction)["credits"]))


@pytest.mark.parametrize("path", DOORS)
@pytest.mark.parametrize(
    ("scenario", "version"), [("account", "v1alpha"), ("v1alpha-account", "v1")]
)
def test_a_replay_proves_which_version_was_called(
    replay: Any, path: str, scenario: str, version: str
) -> None:
    from vcr.errors import CannotOverwriteExistingCassetteException

    with replay(scenario, path), pytest.raises(CannotOverwriteExistingCassetteException):
        call_via(path, "get_account", api_key=KEY, api_version=version)


@pytest.mark.parametrize("cassette", ALL_CASSETTES, ids=lambda p: p.name)
def test_no_cassette_holds_a_key(cassette: Path) -> None:
    text = cassette.read_text()
    assert not re.search(KEY_PATTERN, text)
    assert not re.search(r"\*\*\*", text), "a masked key is scrubbed too"
    scenario = cassette.name.rsplit("-", 1)[0]
    version = SCENARIO_API_VERSIONS.get(scenario, "v1")
    for interaction in interactions(cassette):
        headers = {k.lower(): v for k, v in interaction["request"]["headers"].items()}
        # The placeholder keeps the form the key was sent in.
        expected = API_KEY_PLACEHOLDER if version == "v1alpha" else f"Bearer {API_KEY_PLACEHOLDER}"
        assert headers["authorization"] == [expected]
        assert interaction["request"]["uri"].split("/", 3)[3].startswith(f"{version}/user/")


def test_the_invalid_key_message_is_kept_with_the_masked_key_scrubbed() -> None:
    (interaction,) = interactions(cassette_path("invalid-key", "sync"))
    assert body(interaction)["message"] == (
        f"Incorrect API key provided: {MASKED_KEY_PLACEHOLDER}. "
        "You can find your API key at https://stability.ai."
    )


@pytest.mark.parametrize("cassette", ALL_CASSETTES, ids=lambda p: p.name)
def test_every_cassette_names_its_source(cassette: Path) -> None:
    first_line = cassette.read_text().splitlines()[0]
    assert first_line.startswith(SOURCE_PREFIX)
    assert "stand-in" in first_line or "live API" in first_line


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return loaded


def response_schema(path: str, status: int) -> dict[str, Any]:
    responses = spec()["paths"][path]["get"]["responses"]
    declared = responses[str(status)]
    if "$ref" in declared:
        declared = spec()["components"]["responses"][declared["$ref"].rsplit("/", 1)[-1]]
    schema: dict[str, Any] = declared["content"]["application/json"]["schema"]
    return schema


def validate_against_spec(path: str, status: int, payload: Any) -> None:
    """Raise if ``payload`` is not what openapi.yaml documents for ``path`` and ``status``."""
    schema = {**response_schema(path, status), "components": spec()["components"]}
    OAS30Validator(schema, format_checker=oas30_format_checker).validate(payload)


@pytest.mark.parametrize("cassette", ALL_CASSETTES, ids=lambda p: p.name)
def test_every_response_body_validates_against_the_spec(cassette: Path) -> None:
    for interaction in interactions(cassette):
        path = "/" + interaction["request"]["uri"].split("/", 3)[3].split("?")[0]
        status = interaction["response"]["status"]["code"]
        validate_against_spec(path, status, body(interaction))


def test_the_spec_check_catches_a_drifted_body() -> None:
    from jsonschema.exceptions import ValidationError

    with pytest.raises(ValidationError):
        validate_against_spec("/v1/user/balance", 200, {"credits": "12"})
    with pytest.raises(ValidationError):
        validate_against_spec("/v1/user/account", 200, {"id": "u", "email": "x@y.z"})

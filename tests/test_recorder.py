"""`make cassettes` with a key: the live-API path, run against a stand-in posing as the API.

The real API cannot be reached from the tests, but the recorder's live branch (scrubbing the key
and personal data) can: a stand-in holding a realistic key and personal data plays the API.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from test_cassettes import validate_against_spec

from stability_user import AuthenticationError, Balance, InternalServerError
from stability_user.testing import StandInAPI, StandInOrganization, instant_retries
from support.cassettes import KEY_PATTERN, PATHS, SCENARIOS, make_vcr
from support.paths import call_via

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "record_cassettes.py"
LIVE_KEY = "sk-" + "Zq7" * 16
PERSONAL = [
    "jane.doe@corp.example",
    "user-8f3a2c",
    "org-11aa22",
    "org-33bb44",
    "Jane's team",
    "Side project",
    "https://cdn.example.net/jane.jpg",
    LIVE_KEY,
]


def load_recorder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("record_cassettes", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    api = StandInAPI()
    api.add_account(
        LIVE_KEY,
        id="user-8f3a2c",
        email="jane.doe@corp.example",
        profile_picture="https://cdn.example.net/jane.jpg",
        organizations=[
            StandInOrganization("org-11aa22", "Jane's team", "OWNER", True, 17.0),
            StandInOrganization("org-33bb44", "Side project", "MEMBER", False, 2.5),
        ],
    )
    output = tmp_path_factory.mktemp("cassettes")
    with pytest.MonkeyPatch.context() as patch, api.serve() as server:
        patch.setenv("STABILITY_API_KEY", LIVE_KEY)
        patch.setenv("STABILITY_BASE_URL", server.url)
        assert load_recorder().main(["--output", str(output)]) == 0
    return output


def test_every_cassette_is_written(recorded: Path) -> None:
    names = {p.name for p in recorded.glob("*.yaml")}
    assert names == {f"{s}-{p}.yaml" for s in SCENARIOS for p in PATHS}


def test_no_key_and_no_personal_data_remain(recorded: Path) -> None:
    for cassette in recorded.glob("*.yaml"):
        text = cassette.read_text()
        assert not re.search(KEY_PATTERN, text), cassette.name
        for secret in PERSONAL:
            assert secret not in text, (cassette.name, secret)


def test_sources_are_named(recorded: Path) -> None:
    for cassette in recorded.glob("*.yaml"):
        first = cassette.read_text().splitlines()[0]
        expected = "stand-in" if cassette.name.startswith("server-error") else "live API"
        assert expected in first, cassette.name


def test_scrubbed_cassettes_still_replay_and_validate(recorded: Path) -> None:
    def replay(scenario: str, path: str, *args: Any, key: str = "k") -> Any:
        with make_vcr("none").use_cassette(str(recorded / f"{scenario}-{path}.yaml")):
            return call_via(path, *args, api_key=key)

    for path in PATHS:
        account = replay("account", path, "get_account")
        assert account.email == "user@example.com"
        assert [o.id for o in account.organizations] == ["org-placeholder-1", "org-placeholder-2"]
        assert replay("balance-default", path, "get_balance") == Balance(17.0)
        # The Organization header was scrubbed with the same placeholder as the account's ids.
        assert replay("balance-org", path, "get_balance", "org-placeholder-2") == Balance(2.5)
        with pytest.raises(AuthenticationError):
            replay("invalid-key", path, "get_account")
        with pytest.raises(InternalServerError), instant_retries():
            replay("server-error", path, "get_account")
    for cassette in recorded.glob("*.yaml"):
        for interaction in yaml.safe_load(cassette.read_text())["interactions"]:
            uri_path = "/" + interaction["request"]["uri"].split("/", 3)[3]
            validate_against_spec(
                uri_path,
                interaction["response"]["status"]["code"],
                yaml.safe_load(interaction["response"]["body"]["string"]),
            )

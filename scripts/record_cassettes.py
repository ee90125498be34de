"""`make cassettes`: re-record tests/cassettes/*.yaml.

With STABILITY_API_KEY set, the account and balance scenarios are recorded against the live
API, with the key and personal data (email, ids, names, picture URL) scrubbed to
placeholders; a key the API quotes masked in a 401 (sk-LIVE****CDEF) is scrubbed too, in every
recording. Without it, and always for scenarios the live API cannot be made to produce (a
server error), they are recorded against the stand-in on loopback. Each cassette's first line
names its source.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from stability_user import StabilityError
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, instant_retries
from support.cassettes import (
    CASSETTE_DIR,
    MASKED_KEY_PATTERN,
    MASKED_KEY_PLACEHOLDER,
    PATHS,
    SOURCE_PREFIX,
    cassette_path,
    make_vcr,
)
from support.paths import call_via

INVALID_KEY = "invalid-key-for-the-cassettes"
# Only these response headers are kept: the rest (cookies, tracing ids) say nothing the tests
# need and may identify the recording session.
KEPT_RESPONSE_HEADERS = {"content-type", "retry-after"}


class Scrubber:
    """Replaces personal data with stable placeholders, in bodies and Organization headers."""

    def __init__(self) -> None:
        self.replacements: dict[str, str] = {}

    def _placeholder(self, value: str, kind: str) -> str:
        if value in self.replacements.values():  # already scrubbed (vcrpy may ask twice)
            return value
        if value not in self.replacements:
            count = sum(1 for v in self.replacements.values() if v.startswith(kind))
            self.replacements[value] = f"{kind}-placeholder-{count + 1}"
        return self.replacements[value]

    def request(self, request: Any) -> Any:
        organization = request.headers.get("Organization")
        if organization:
            request.headers["Organization"] = self._placeholder(organization, "org")
        return request

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        response = scrub_response(response)
        body = response["body"]["string"]
        try:
            data = json.loads(body)
        except ValueError:
            return response
        if isinstance(data, dict) and "organizations" in data:
            data["id"] = self._placeholder(data.get("id", ""), "user")
            data["email"] = "user@example.com"
            if "profile_picture" in data:
                data["profile_picture"] = "https://example.com/avatar.png"
            for org in data.get("organizations", []):
                org["id"] = self._placeholder(org.get("id", ""), "org")
                org["name"] = f"Organization {org['id'].rsplit('-', 1)[-1]}"
        response["body"]["string"] = json.dumps(data).encode()
        return response


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Keep only the headers the tests need, and no masked key in the body."""
    response["headers"] = {
        name: values
        for name, values in response["headers"].items()
        if name.lower() in KEPT_RESPONSE_HEADERS
    }
    body = response["body"]["string"]
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    scrubbed = re.sub(MASKED_KEY_PATTERN, MASKED_KEY_PLACEHOLDER, text)
    if scrubbed != text:
        response["body"]["string"] = scrubbed.encode()
    return response


def record(
    target: Path,
    source: str,
    action: Callable[[], Any],
    scrubber: Scrubber | None,
) -> None:
    target.unlink(missing_ok=True)
    options: dict[str, Any] = {"before_record_response": scrub_response}
    if scrubber is not None:
        options = {
            "before_record_request": scrubber.request,
            "before_record_response": scrubber.response,
        }
    with make_vcr("all", **options).use_cassette(str(target)):
        try:
            action()
        except StabilityError as error:  # the error scenarios are meant to fail
            print(f"  {target.name}: {type(error).__name__}")
        else:
            print(f"  {target.name}: ok")
    target.write_text(f"{SOURCE_PREFIX}{source}\n{target.read_text()}")


def scenario_actions(
    path: str, api_key: str, base_url: str, organization: str
) -> dict[str, Callable[[], Any]]:
    return {
        "account": lambda: call_via(path, "get_account", api_key=api_key, base_url=base_url),
        "balance-default": lambda: call_via(
            path, "get_balance", api_key=api_key, base_url=base_url
        ),
        "balance-org": lambda: call_via(
            path, "get_balance", organization, api_key=api_key, base_url=base_url
        ),
        "invalid-key": lambda: call_via(
            path, "get_account", api_key=INVALID_KEY, base_url=base_url
        ),
        "v1alpha-account": lambda: call_via(
            path, "get_account", api_key=api_key, base_url=base_url, api_version="v1alpha"
        ),
        "v1alpha-balance": lambda: call_via(
            path, "get_balance", api_key=api_key, base_url=base_url, api_version="v1alpha"
        ),
    }


def live_base_url() -> str:
    return (
        os.environ.get("STABILITY_BASE_URL")
        or os.environ.get("API_HOST")
        or "https://api.stability.ai"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--output", type=Path, default=CASSETTE_DIR, help="folder (default: tests/cassettes)"
    )
    output: Path = parser.parse_args(argv).output
    output.mkdir(parents=True, exist_ok=True)
    live_key = os.environ.get("STABILITY_API_KEY")
    healthy = StandInAPI.sample()
    # The live API cannot be made to fail on demand: server errors always come from the
    # stand-in, with a 500 injected for every request.
    failing = StandInAPI.sample()
    failing.inject_error(500, times=None, message="An unexpected server error occurred.")
    with healthy.serve() as server, failing.serve() as failing_server, instant_retries():
        for path in PATHS:
            print(f"{path}:")
            scrub: Scrubber | None = None
            if live_key:
                base_url = live_base_url()
                orgs = call_via(
                    path, "get_account", api_key=live_key, base_url=base_url
                ).organizations
                organization = (orgs[1] if len(orgs) > 1 else orgs[0]).id
                source = "the live API, key and personal data scrubbed"
                actions = scenario_actions(path, live_key, base_url, organization)
                scrub = Scrubber()
            else:
                source = "the stand-in (stability_user.testing) on loopback; no key was set"
                actions = scenario_actions(path, SAMPLE_API_KEY, server.url, "org-standin-lumen")
            for scenario, action in actions.items():
                record(cassette_path(scenario, path, output), source, action, scrub)
            record(
                cassette_path("server-error", path, output),
                "the stand-in (stability_user.testing) on loopback, a 500 injected",
                lambda p=path: call_via(
                    p, "get_account", api_key=SAMPLE_API_KEY, base_url=failing_server.url
                ),
                None,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The cassettes' one VCR configuration, shared by the tests (replay) and `make cassettes`.

Requests match on method, path, query and the ``Organization`` header (vcrpy's default
matchers ignore headers, and the header is what scopes a balance). The path names the API
version, so a replay proves which one was called. The host is left out on purpose: a cassette
recorded against the stand-in on loopback replays for a client pointed at
https://api.stability.ai. The key in ``Authorization`` is replaced by a placeholder, keeping
the form it was sent in (``Bearer <STABILITY_API_KEY>`` on v1, the bare placeholder on
v1alpha).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import vcr
from vcr.request import Request

from stability_user._constants import API_KEY_PLACEHOLDER

CASSETTE_DIR = Path(__file__).resolve().parent.parent / "cassettes"
SCENARIOS = (
    "account",
    "balance-default",
    "balance-org",
    "invalid-key",
    "server-error",
    "v1alpha-account",
    "v1alpha-balance",
)
# The API version each scenario is recorded with; the others use the default (v1).
SCENARIO_API_VERSIONS = {"v1alpha-account": "v1alpha", "v1alpha-balance": "v1alpha"}
PATHS = ("sync", "async", "module")
# What the recorder writes as each cassette's first line, naming where it came from.
SOURCE_PREFIX = "# source: "
# Anything shaped like a Stability API key.
KEY_PATTERN = r"sk-[A-Za-z0-9_\-]{16,}"
# A key as the API quotes it in a 401, its middle masked: sk-LIVE***********CDEF.
MASKED_KEY_PATTERN = r"[A-Za-z0-9_\-]*\*{3,}[A-Za-z0-9_\-]*"
MASKED_KEY_PLACEHOLDER = "<MASKED_STABILITY_API_KEY>"


# Doors that replay another door's recording: the async client's requests are the same on
# either HTTP backend, and vcrpy replays them through httpx2 and aiohttp alike.
REPLAYED_AS = {"aiohttp": "async"}


def cassette_path(scenario: str, path: str, directory: Path = CASSETTE_DIR) -> Path:
    path = REPLAYED_AS.get(path, path)
    return directory / f"{scenario}-{path}.yaml"


def scrub_authorization(key: str, value: str, request: Request) -> str:
    """The ``Authorization`` value with the key replaced, its ``Bearer`` form kept."""
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() == "bearer":
        return f"{scheme} {API_KEY_PLACEHOLDER}"
    return API_KEY_PLACEHOLDER


def match_organization(r1: Request, r2: Request) -> None:
    assert r1.headers.get("Organization") == r2.headers.get("Organization")


def make_vcr(record_mode: str = "none", **options: Any) -> vcr.VCR:
    recorder = vcr.VCR(
        record_mode=record_mode,
        match_on=["method", "path", "query", "organization"],
        filter_headers=[("authorization", scrub_authorization)],
        decode_compressed_response=True,
        **options,
    )
    recorder.register_matcher("organization", match_organization)
    return recorder

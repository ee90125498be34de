"""``scripts/spec_watch.py``, and the workflow step that runs it, against a loopback server
serving what Stability might publish: the copy written otherwise, changes that leave the user
API alone, compatible and breaking ones said in plain words, what is not a document at all, and
what cannot be written. Each run works on a copy of ``spec/upstream/``."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from support.doc_blocks import ROOT, blocks
from support.unwritable import HOW, unwritable

pytestmark = [
    pytest.mark.tooling,
    pytest.mark.skipif(
        not (ROOT / "tools" / "openapi-diff" / "node_modules").is_dir(),
        reason="make spec-watch installs tools/openapi-diff (npm ci)",
    ),
]

V1 = "stability-rest-v1.openapi.json"
# The other published document, served unchanged from the loopback site: the watch fetches
# every document with a URL, and this machine reaches no https:// site.
V2BETA = "stability-v2beta.openapi.json"
V2BETA_COPY = "/v2beta-as-copied"
UPSTREAM = ROOT / "spec" / "upstream"
PUBLISHED: dict[str, Any] = json.loads((UPSTREAM / V1).read_text())
BALANCE = "/v1/user/balance"
# Well inside pytest-timeout's 60 s: a watch that hangs fails the test with its own message.
RUN_TIMEOUT = 45

Change = Callable[[dict[str, Any]], None]


def variant(*changes: Change) -> bytes:
    """The v1 document as published, with ``changes`` made to it."""
    document = copy.deepcopy(PUBLISHED)
    for change in changes:
        change(document)
    return json.dumps(document, indent=2).encode()


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def _balance(document: dict[str, Any]) -> dict[str, Any]:
    return _schema(document, "BalanceResponseBody")


def _role(document: dict[str, Any]) -> dict[str, Any]:
    role: dict[str, Any] = _schema(document, "OrganizationMembership")["properties"]["role"]
    return role


def _new_endpoint(document: dict[str, Any]) -> None:
    document["paths"]["/v1/generation/{engine_id}/sketch-to-image"] = {
        "post": {"tags": ["v1/generation"], "responses": {"200": {"description": "An image."}}}
    }


def _optional_field(document: dict[str, Any]) -> None:
    _balance(document)["properties"]["promo_credits"] = {"type": "number"}


def _credits_removed(document: dict[str, Any]) -> None:
    del _balance(document)["properties"]["credits"]
    del _balance(document)["required"]


def _credits_retyped(document: dict[str, Any]) -> None:
    _balance(document)["properties"]["credits"] = {"type": "string"}


def _credits_optional(document: dict[str, Any]) -> None:
    del _balance(document)["required"]


def _balance_parameter(**parameter: Any) -> Change:
    def change(document: dict[str, Any]) -> None:
        document["paths"][BALANCE]["get"]["parameters"].append(parameter)

    return change


def _organization_required(document: dict[str, Any]) -> None:
    document["components"]["parameters"]["organization"]["required"] = True


def _roles(*values: str) -> Change:
    def change(document: dict[str, Any]) -> None:
        _role(document)["enum"] = list(values)

    return change


def _descriptions(document: dict[str, Any]) -> None:
    _balance(document)["properties"]["credits"]["description"] = "What is left to spend."
    document["paths"][BALANCE]["get"]["description"] = "The credits left."


def _parent(document: dict[str, Any]) -> None:
    """A ``$ref`` cycle, as valid OpenAPI allows: an organization's parent is one too."""
    parent = {"$ref": "#/components/schemas/OrganizationMembership"}
    _schema(document, "OrganizationMembership")["properties"]["parent"] = parent


def _name_retyped(document: dict[str, Any]) -> None:
    _schema(document, "OrganizationMembership")["properties"]["name"]["type"] = "integer"


def _nested(depth: int) -> bytes:
    """Valid JSON, and an OpenAPI document's outline, nested ``depth`` arrays deep."""
    deep = "[" * depth + "]" * depth
    return f'{{"openapi": "3.0.3", "paths": {{}}, "x-deep": {deep}}}'.encode()


class Published(BaseHTTPRequestHandler):
    """What each path serves (``pages``), or how it fails."""

    pages: ClassVar[dict[str, tuple[int, str, bytes]]] = {}
    release = threading.Event()

    def do_GET(self) -> None:
        if self.path == "/hang":
            self.release.wait(30)  # accepts, and never answers while the test runs
            return
        if self.path == "/huge":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            chunk = b" " * 2**20
            try:
                for _ in range(50):  # 50 MB of whitespace: JSON, and far too large
                    self.wfile.write(chunk)
            except OSError:
                pass  # the watch stopped reading past its limit
            return
        if self.path == "/drip":
            self._drip()
            return
        status, kind, body = self.pages.get(self.path, (404, "text/plain", b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        if status in (301, 302):
            self.send_header("Location", body.decode())
            body = b""
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip(self) -> None:
        """A JSON body of 100,000 spaces, one every quarter of a second: each wait for a byte
        short, the whole seven hours long."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        for _ in range(100_000):
            if self.release.wait(0.25):
                return
            try:
                self.wfile.write(b" ")
            except OSError:
                return  # the watch gave up and closed

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(path: str, body: bytes, kind: str = "application/json", status: int = 200) -> str:
    Published.pages[path] = (status, kind, body)
    return path


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    serve("/reformatted.json", json.dumps(PUBLISHED, indent=1, sort_keys=True).encode())
    serve("/reformatted.yaml", yaml.safe_dump(PUBLISHED).encode(), "application/yaml")
    serve("/new-endpoint", variant(_new_endpoint))
    serve("/optional-field", variant(_optional_field))
    serve("/credits-removed", variant(_credits_removed))
    serve("/credits-retyped", variant(_credits_retyped))
    serve("/html", b"<!doctype html><title>API reference</title>", "text/html")
    serve("/not-openapi", b'{"openapi": "3.0.3"}')
    serve("/nan", json.dumps({**PUBLISHED, "x-rate": float("nan")}).encode())
    serve("/to-http", b"http://example.com/openapi.json", "text/plain", 302)
    serve("/deep", _nested(100_000))
    serve(V2BETA_COPY, (UPSTREAM / V2BETA).read_bytes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), Published)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    Published.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    folder = tmp_path / "upstream"
    shutil.copytree(UPSTREAM, folder)
    return folder


SCRIPT = [sys.executable, str(ROOT / "scripts" / "spec_watch.py")]


def watch(
    upstream: Path,
    path: str,
    site: str,
    *options: str,
    wrapper: list[str] | None = None,
    v2beta: str = V2BETA_COPY,
) -> subprocess.CompletedProcess[str]:
    """The watch, the v1 document fetched from ``path`` on the loopback site, the v2beta one
    from ``v2beta`` (unchanged unless it says)."""
    return subprocess.run(
        [
            *(wrapper or []),
            *SCRIPT,
            "--upstream",
            str(upstream),
            "--source",
            f"{V1}={site}{path}",
            "--source",
            f"{V2BETA}={site}{v2beta}",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def untouched(upstream: Path) -> bool:
    return all(
        (upstream / name).read_bytes() == (UPSTREAM / name).read_bytes()
        for name in ("sources.json", V1, V2BETA)
    )


def vendor(upstream: Path, raw: bytes) -> None:
    """Make ``raw`` the vendored v1 copy, as ``--write`` would have."""
    (upstream / V1).write_bytes(raw)


def last_line(text: str) -> str:
    return text.rstrip("\n").rsplit("\n", 1)[-1]


VERDICTS = {
    "breaking": "**Breaking for this SDK:**",
    "compatible": "**The operations this SDK wraps changed compatibly**",
    "for readers": "**The user API this SDK wraps is unchanged for clients**",
    "unchanged": "**The user API this SDK wraps is unchanged**:",
}


def test_the_same_document_written_otherwise_is_unchanged(upstream: Path, site: str) -> None:
    done = watch(upstream, "/reformatted.json", site)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert f"{V1}: unchanged" in done.stderr
    assert "stability-rest-v1alpha.openapi.json: not published any more" in done.stderr
    assert untouched(upstream)


# The copy as Stability's generator writes numbers and emoji ("\ud83d\ude80" is a JSON escape
# of one character, U+1F680, as a pair of UTF-16 surrogates).
NUMBERS = (
    '"credits": {"type": "number", "maximum": 1e6, "minimum": 1e-7, '
    '"description": "Credits left \\ud83d\\ude80"}'
)


def _with_numbers(text: str) -> bytes:
    old = json.dumps(PUBLISHED["components"]["schemas"]["BalanceResponseBody"]["properties"])
    written = json.dumps(PUBLISHED).replace(old, "{" + text + "}", 1)
    assert written != json.dumps(PUBLISHED)
    return written.encode()


@pytest.mark.parametrize(
    "republished",
    [
        pytest.param(NUMBERS, id="the-same-bytes"),
        pytest.param(
            NUMBERS.replace("1e6", "1000000").replace("1e-7", "1E-07"), id="numbers-otherwise"
        ),
        pytest.param(
            NUMBERS.replace("1e6", "1e+06").replace("\\ud83d\\ude80", "\U0001f680"),
            id="the-emoji-as-it-is",
        ),
    ],
)
def test_json_numbers_and_escapes_read_as_json_so_a_republished_copy_is_unchanged(
    upstream: Path, site: str, republished: str
) -> None:
    vendor(upstream, _with_numbers(NUMBERS))
    done = watch(upstream, serve("/numbers", _with_numbers(republished)), site, "--write")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert (upstream / V1).read_bytes() == _with_numbers(NUMBERS)


def test_a_number_written_1e6_is_a_number_and_its_change_is_named(
    upstream: Path, site: str
) -> None:
    vendor(upstream, _with_numbers(NUMBERS))
    changed = _with_numbers(NUMBERS.replace("1e6", "5e5"))  # lower: openapi-diff agrees
    done = watch(upstream, serve("/maximum", changed), site)
    assert done.returncode == 1, done.stderr
    assert VERDICTS["compatible"] in done.stdout
    assert (
        "- **Compatible**: `maximum` of `credits` in `BalanceResponseBody` changed from "
        "`1000000` to `500000` (the balance response)\n"
    ) in done.stdout


# Each change Stability might publish: the verdict it earns and the lines that name it.
NAMED: list[tuple[str, list[Change], str, list[str]]] = [
    (
        "new-generation-endpoint",
        [_new_endpoint],
        "unchanged",
        [
            "- Nothing changed.",
            "- Operations added: `POST /v1/generation/{engine_id}/sketch-to-image`",
        ],
    ),
    (
        "descriptions-only",
        [_descriptions],
        "for readers",
        [
            "- **For readers only**: `description` of `credits` in `BalanceResponseBody` "
            "changed (the balance response)",
            "- **For readers only**: `description` of GET /v1/user/balance changed",
        ],
    ),
    (
        "optional-field",
        [_optional_field],
        "compatible",
        [
            "- **Compatible**: optional `promo_credits` added to `BalanceResponseBody` "
            "(the balance response)",
            "- Components: schemas changed: `BalanceResponseBody`",
        ],
    ),
    (
        "optional-header",
        [
            _balance_parameter(
                name="Stability-Region", schema={"type": "string"}, **{"in": "header"}
            )
        ],
        "compatible",
        ["- **Compatible**: optional header `Stability-Region` added to GET /v1/user/balance"],
    ),
    (
        "required-header",
        [
            _balance_parameter(
                name="Stability-Region",
                required=True,
                schema={"type": "string"},
                **{"in": "header"},
            )
        ],
        "breaking",
        ["- **Breaking**: required header `Stability-Region` added to GET /v1/user/balance"],
    ),
    (
        "required-query-parameter",
        [
            _balance_parameter(
                name="currency", required=True, schema={"type": "string"}, **{"in": "query"}
            )
        ],
        "breaking",
        ["- **Breaking**: required query parameter `currency` added to GET /v1/user/balance"],
    ),
    (
        "organization-required",
        [_organization_required],
        "breaking",
        ["- **Breaking**: header `Organization` of GET /v1/user/balance is now required"],
    ),
    (
        "credits-removed",
        [_credits_removed],
        "breaking",
        [
            "- **Breaking**: `credits` removed from `BalanceResponseBody` (the balance response)",
            "- **Breaking** (openapi-diff): `response.body.scope.add` at "
            "`paths./v1/user/balance.get.responses.200.content.application/json.schema`",
        ],
    ),
    (
        "credits-retyped",
        [_credits_retyped],
        "breaking",
        [
            "- **Breaking**: `credits` in `BalanceResponseBody` retyped from number "
            "(double) to string (the balance response)"
        ],
    ),
    (
        "credits-optional",
        [_credits_optional],
        "breaking",
        [
            "- **Breaking**: `credits` in `BalanceResponseBody` may now be missing "
            "(the balance response)"
        ],
    ),
    (
        "ref-cycle-added",
        [_parent],
        "compatible",
        [
            "- **Compatible**: optional `parent` added to `OrganizationMembership` "
            "(the account response)",
            "- **Note** (openapi-diff): it cannot follow a `$ref` cycle, so it compared the "
            "documents with theirs cut at `#/components/schemas/OrganizationMembership`",
        ],
    ),
]


@pytest.mark.parametrize(("name", "changes", "verdict", "lines"), NAMED, ids=[c[0] for c in NAMED])
def test_each_change_is_named_in_plain_words_with_its_verdict(
    upstream: Path, site: str, name: str, changes: list[Change], verdict: str, lines: list[str]
) -> None:
    done = watch(upstream, serve(f"/{name}", variant(*changes)), site)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith(
        f"# Stability's published API documents changed\n\n{VERDICTS[verdict]}"
    )
    for line in lines:
        assert f"\n{line}" in done.stdout
    if verdict != "breaking":
        assert "**Breaking" not in done.stdout
    assert untouched(upstream)  # without --write


def test_the_regenerating_page_shows_lines_the_watch_writes(upstream: Path, site: str) -> None:
    examples = [b for b in blocks(ROOT / "docs" / "regenerating.md") if b.language == "markdown"]
    user_api, prices = examples  # the v1/user operations' changes, then the prices'
    region = {"name": "Stability-Region", "in": "header", "required": True, "schema": {}}
    changes = (_descriptions, _credits_removed, _balance_parameter(**region), _optional_field)
    moved = v2beta_variant(_ultra_at_9, _remove_text_priced, _fast_3d_retired)
    done = watch(
        upstream,
        serve("/as-documented", variant(*changes)),
        site,
        v2beta=serve("/prices-as-documented", moved),
    )
    assert done.returncode == 1, done.stderr
    written = done.stdout.splitlines()
    for line in [*user_api.text.splitlines(), *prices.text.splitlines()]:
        assert line in written


@pytest.mark.parametrize(
    ("name", "copy_changes", "served_changes", "verdict", "line"),
    [
        (
            "enum-value-added",
            [_roles("MEMBER", "ADMIN")],
            [_roles("MEMBER", "ADMIN", "OWNER")],
            "breaking",
            "- **Breaking**: value `OWNER` added to `role` in `OrganizationMembership` "
            "(the account response)",
        ),
        (
            "enum-value-removed",
            [_roles("MEMBER", "ADMIN")],
            [_roles("MEMBER")],
            "compatible",
            "- **Compatible**: value `ADMIN` removed from `role` in `OrganizationMembership` "
            "(the account response)",
        ),
        (
            "retyped-in-a-ref-cycle",
            [_parent],
            [_parent, _name_retyped],
            "breaking",
            "- **Breaking**: `name` in `OrganizationMembership` retyped from string to integer "
            "(the account response)",
        ),
    ],
    ids=["enum-value-added", "enum-value-removed", "retyped-in-a-ref-cycle"],
)
def test_changes_to_what_the_copy_already_holds(
    upstream: Path,
    site: str,
    name: str,
    copy_changes: list[Change],
    served_changes: list[Change],
    verdict: str,
    line: str,
) -> None:
    vendor(upstream, variant(*copy_changes))
    done = watch(upstream, serve(f"/{name}", variant(*served_changes)), site)
    assert done.returncode == 1, done.stderr
    assert VERDICTS[verdict] in done.stdout
    assert f"\n{line}\n" in done.stdout


# Stability's prices, in the v2beta document (which this SDK wraps no operation of): each that
# moves is named in plain words, and needs a release whatever the v1 verdict.

V2BETA_PUBLISHED: dict[str, Any] = json.loads((UPSTREAM / V2BETA).read_text())
ULTRA = "/v2beta/stable-image/generate/ultra"
CORE = "/v2beta/stable-image/generate/core"
PRICES_MOVED = (
    "**Stability's prices changed** (below): `make generate` moves the price catalogue with "
    "them, and a release carries it to users"
)


def v2beta_variant(*changes: Change) -> bytes:
    """The v2beta document as published, with ``changes`` made to it."""
    document = copy.deepcopy(V2BETA_PUBLISHED)
    for change in changes:
        change(document)
    return json.dumps(document, indent=2).encode()


def _described(path: str, old: str, new: str) -> Change:
    def change(document: dict[str, Any]) -> None:
        operation = document["paths"][path]["post"]
        assert old in operation["description"]
        operation["description"] = operation["description"].replace(old, new)

    return change


_ultra_at_9 = _described(ULTRA, "uses 8 credits", "uses 9 credits")


def _remove_text_priced(document: dict[str, Any]) -> None:
    document["paths"]["/v2beta/stable-image/edit/remove-text"] = {
        "post": {
            "description": "Removes the text from an image.\n\n### Credits\n"
            "Flat rate of 4 credits per successful generation.",
            "responses": {"200": {"description": "An image."}},
        }
    }


def _fast_3d_retired(document: dict[str, Any]) -> None:
    del document["paths"]["/v2beta/3d/stable-fast-3d"]


def test_a_price_that_moved_is_named_and_needs_a_release(upstream: Path, site: str) -> None:
    done = watch(
        upstream,
        "/reformatted.json",
        site,
        v2beta=serve("/ultra-at-9", v2beta_variant(_ultra_at_9)),
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == (
        "# Stability's published API documents changed\n\n"
        f"{PRICES_MOVED}; the user API this SDK wraps is unchanged.\n\n"
        f"## `{V2BETA}`\n\n"
        f"From <{site}/ultra-at-9>.\n\n"
        "This SDK wraps none of this document's operations.\n\n"
        "Prices, as `make generate` reads them into the catalogue:\n\n"
        "- generate/ultra: 8 to 9 credits per successful result\n\n"
        "In the whole document:\n\n"
        f"- Operations changed: `POST {ULTRA}`\n"
    )
    assert untouched(upstream)


@pytest.mark.parametrize(
    ("name", "change", "lines"),
    [
        (
            "newly-priced",
            _remove_text_priced,
            [
                "- newly priced: edit/remove-text, 4 credits per successful result",
                "- Operations added: `POST /v2beta/stable-image/edit/remove-text`",
            ],
        ),
        (
            "no-longer-priced",
            _fast_3d_retired,
            [
                "- no longer priced: 3d/stable-fast-3d",
                "- Operations removed: `POST /v2beta/3d/stable-fast-3d`",
            ],
        ),
    ],
    ids=["newly-priced", "no-longer-priced"],
)
def test_a_price_that_came_or_went_is_named_and_needs_a_release(
    upstream: Path, site: str, name: str, change: Change, lines: list[str]
) -> None:
    done = watch(
        upstream, "/reformatted.json", site, v2beta=serve(f"/{name}", v2beta_variant(change))
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith(
        f"# Stability's published API documents changed\n\n{PRICES_MOVED}; the user API this "
        "SDK wraps is unchanged.\n"
    )
    prices = done.stdout.split("Prices, as `make generate` reads them into the catalogue:\n\n")[1]
    assert prices.startswith(f"{lines[0]}\n\nIn the whole document:\n")
    for line in lines:
        assert f"\n{line}\n" in done.stdout


def test_descriptions_that_move_no_price_need_no_release(upstream: Path, site: str) -> None:
    changes = (
        _described(ULTRA, "Our most advanced text to image", "Our finest text to image"),
        # The Credits sentence reworded, its price the same.
        _described(
            CORE,
            "Flat rate of 3 credits per successful generation.",
            "Flat rate of 3 credits per successful result.",
        ),
    )
    done = watch(
        upstream, "/reformatted.json", site, v2beta=serve("/reworded", v2beta_variant(*changes))
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith(
        f"# Stability's published API documents changed\n\n{VERDICTS['unchanged']} only the "
        f"copies move.\n\n## `{V2BETA}`\n"
    )
    assert "\nThis SDK wraps none of this document's operations.\n" in done.stdout
    assert f"\n- Operations changed: `POST {CORE}`, `POST {ULTRA}`\n" in done.stdout
    assert "price" not in done.stdout.lower()
    assert "None" not in done.stdout


@pytest.mark.parametrize(
    ("v1_change", "verdict"),
    [
        (
            _optional_field,
            f"{VERDICTS['compatible']}: regenerate, let `openapi.yaml` follow, release.\n\n"
            f"{PRICES_MOVED}.\n",
        ),
        (
            _descriptions,
            f"{PRICES_MOVED}; the user API this SDK wraps is unchanged for clients (only what a "
            "reader sees changed).\n",
        ),
    ],
    ids=["beside-a-compatible-change", "beside-descriptions"],
)
def test_the_prices_verdict_stands_apart_from_the_user_api_s(
    upstream: Path, site: str, v1_change: Change, verdict: str
) -> None:
    done = watch(
        upstream,
        serve(f"/v1-{v1_change.__name__}", variant(v1_change)),
        site,
        v2beta=serve("/ultra-at-9", v2beta_variant(_ultra_at_9)),
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith(f"# Stability's published API documents changed\n\n{verdict}")
    assert "\n- generate/ultra: 8 to 9 credits per successful result\n" in done.stdout
    assert "\nIn the `v1/user` operations this SDK wraps:\n" in done.stdout


def test_a_price_make_generate_cannot_read_is_exit_2_naming_the_operation(
    upstream: Path, site: str
) -> None:
    unreadable = _described(
        ULTRA,
        "The Ultra service uses 8 credits per successful result.",
        "The Ultra service costs about 9 credits, give or take.",
    )
    served = serve("/unreadable-price", v2beta_variant(unreadable))
    done = watch(upstream, "/reformatted.json", site, "--write", v2beta=served)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.endswith(
        f"spec watch: {V2BETA}: the published document's prices cannot be read: POST {ULTRA}: "
        "its Credits section: no price statements where one is read (make generate stops on it "
        "too: scripts/price_catalogue.py must learn the wording first); nothing written\n"
    )
    assert "Traceback" not in done.stderr
    assert untouched(upstream)


def test_write_replaces_the_copy_and_its_digest_and_the_contract_tests_say_why(
    upstream: Path, site: str
) -> None:
    done = watch(upstream, "/credits-retyped", site, "--write", "--summary", str(upstream / "s.md"))
    assert done.returncode == 1, done.stderr
    assert (upstream / "s.md").read_text() == done.stdout
    written = (upstream / V1).read_bytes()
    assert written == Published.pages["/credits-retyped"][2]
    record = json.loads((upstream / "sources.json").read_text())[V1]
    assert record["sha256"] == hashlib.sha256(written).hexdigest()
    assert record["copied"] == time.strftime("%Y-%m-%d", time.gmtime())
    assert record["url"] == "https://api.stability.ai/openapi.json"  # a mirror is not the source
    # The wire-contract tests, run on the new copy: they hold it to its digest, and fail on
    # what openapi.yaml and the facade must now be brought to.
    selected = [str(ROOT / "tests" / "test_spec.py"), "-k", "vendored or response_schemas"]
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-cov", *selected],
        env={**os.environ, "SPEC_UPSTREAM": str(upstream)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert tests.returncode == 1
    assert "passed" in tests.stdout  # the digest check: the copy is as recorded
    failed = "FAILED tests/test_spec.py::test_response_schemas_match[BalanceResponseBody-v1/user]"
    assert failed in tests.stdout
    assert watch(upstream, "/credits-retyped", site).returncode == 0  # now the copy


def _numbers(document: dict[str, Any]) -> None:
    _balance(document)["properties"]["credits"].update(maximum=1e6, minimum=1e-7)


def yaml_copy(*changes: Change) -> str:
    """The v1 document in YAML, with numbers as YAML 1.2 writes them (``1e6``: PyYAML, which
    follows YAML 1.1, writes and wants ``1.0e+6``)."""
    text = yaml.safe_dump(json.loads(variant(*changes)))
    return text.replace(": 1000000.0\n", ": 1e6\n").replace(": 1.0e-07\n", ": 1e-7\n")


def test_a_copy_written_in_yaml_is_read_and_replaced_as_yaml(upstream: Path, site: str) -> None:
    name = "stability-rest-v1.openapi.yaml"
    sources = json.loads((upstream / "sources.json").read_text())
    sources[name] = {**sources.pop(V1), "url": None}
    (upstream / "sources.json").write_text(json.dumps(sources))
    written = yaml_copy(_numbers)
    assert "maximum: 1e6\n" in written
    (upstream / name).write_text(written)

    def watch_yaml(path: str, *options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *SCRIPT,
                "--upstream",
                str(upstream),
                "--source",
                f"{name}={site}{path}",
                "--source",
                f"{V2BETA}={site}{V2BETA_COPY}",
                *options,
            ],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )

    unchanged = watch_yaml(serve("/copy.yaml", written.encode(), "application/yaml"))
    assert unchanged.returncode == 0, unchanged.stderr
    retyped = yaml_copy(_numbers, _credits_retyped, _optional_field)
    done = watch_yaml(serve("/retyped.yaml", retyped.encode(), "application/yaml"), "--write")
    assert done.returncode == 1, done.stderr
    assert VERDICTS["breaking"] in done.stdout
    assert (
        "\n- **Compatible**: optional `promo_credits` added to `BalanceResponseBody`" in done.stdout
    )
    assert (upstream / name).read_text() == retyped


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/missing", "HTTP 404"),
        ("/hang", "not downloaded within 1 s"),
        ("/drip", "not downloaded within 1 s"),
        ("/html", "not JSON (Expecting value: line 1 column 1 (char 0))"),
        ("/reformatted.yaml", "not JSON"),
        ("/nan", "not JSON (NaN is not a JSON number)"),
        ("/not-openapi", "not an OpenAPI 3 document"),
        ("/huge", "larger than 10 MiB"),
        ("/to-http", "redirected to http://example.com/openapi.json, not https"),
        ("/deep", "nested too deeply to read"),
    ],
)
def test_what_is_not_a_published_json_document_is_exit_2_and_nothing_is_written(
    upstream: Path, site: str, path: str, reason: str
) -> None:
    # The deadline's own cases meet a short one; the others the default, so that reading 10 MiB
    # on a loaded machine never meets it first.
    deadline = ["--timeout", "1"] if reason.startswith("not downloaded") else []
    done = watch(upstream, path, site, "--write", *deadline)
    assert done.returncode == 2
    assert done.stdout == ""
    assert reason in last_line(done.stderr)
    assert done.stderr.endswith("; nothing written\n")
    assert untouched(upstream)


def test_only_https_is_fetched_beyond_this_machine(upstream: Path) -> None:
    done = subprocess.run(
        [*SCRIPT, "--upstream", str(upstream), "--source", f"{V1}=http://example.com/openapi.json"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 2
    assert "http://example.com/openapi.json: not an https:// URL" in done.stderr


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf"])
def test_the_timeout_is_a_positive_number_of_seconds(upstream: Path, seconds: str) -> None:
    done = subprocess.run(
        [*SCRIPT, "--upstream", str(upstream), "--timeout", seconds],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 2
    assert f"'{seconds}' is not a positive number of seconds" in done.stderr


@pytest.mark.parametrize("how", [*HOW, "a-folder"])
def test_a_summary_that_cannot_be_written_is_exit_2_and_nothing_is_written(
    upstream: Path, site: str, tmp_path: Path, how: str
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder if how == "a-folder" else folder / "summary.md"
    wrapper = None if how == "a-folder" else unwritable(how, folder, [])
    try:
        done = watch(
            upstream, "/credits-removed", site, "--write", "--summary", str(target), wrapper=wrapper
        )
    finally:
        folder.chmod(0o700)
    assert done.returncode == 2, done.stderr
    assert last_line(done.stderr).startswith(f"spec watch: cannot write the summary to {target}: ")
    assert done.stderr.endswith("; nothing written\n")
    assert untouched(upstream)


def test_an_unexpected_error_is_exit_2_with_a_line_never_1(upstream: Path, site: str) -> None:
    sources = json.loads((upstream / "sources.json").read_text())
    del sources[V1]["tag"]  # a hand-edited record
    (upstream / "sources.json").write_text(json.dumps(sources))
    done = watch(upstream, "/credits-removed", site, "--write")
    assert done.returncode == 2
    assert done.stdout == ""
    assert last_line(done.stderr) == "spec watch: unexpected error: KeyError: 'tag'"
    assert (upstream / V1).read_bytes() == (UPSTREAM / V1).read_bytes()


# The scheduled workflow's Watch step, run as GitHub runs it (`bash -e`), in a checkout of its
# own whose v1 document is published on the loopback server: the status each case produces,
# what the step makes of it, and which of the later steps would run.

WORKFLOW = ROOT / ".github" / "workflows" / "spec-watch.yml"
STEPS: list[dict[str, Any]] = yaml.safe_load(WORKFLOW.read_text())["jobs"]["watch"]["steps"]
WATCH_STEP = next(i for i, step in enumerate(STEPS) if step.get("id") == "watch")


def checkout(tmp_path: Path, url: str, venv: Path, v2beta: str = V2BETA_COPY) -> Path:
    """What the Watch step finds in the runner's checkout: the watch's scripts and the price
    catalogue's (copies, so that the spec/upstream/ they follow is this one's), spec/upstream/
    with the v1 document's URL ``url`` (and the v2beta one's at ``v2beta`` on the same site),
    openapi-diff, and the virtual environment ``venv`` as ``.venv``."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    for script in ("spec_watch.py", "price_catalogue.py", "spec_watch_pr.sh"):
        shutil.copy2(ROOT / "scripts" / script, root / "scripts")
    shutil.copytree(
        ROOT / "scripts" / "spec_checks",
        root / "scripts" / "spec_checks",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copytree(UPSTREAM, root / "spec" / "upstream")
    sources = json.loads((UPSTREAM / "sources.json").read_text())
    sources[V1]["url"] = url
    sources[V2BETA]["url"] = url[: url.index("/", len("http://"))] + v2beta
    (root / "spec" / "upstream" / "sources.json").write_text(json.dumps(sources, indent=2) + "\n")
    (root / "tools").mkdir()
    (root / "tools" / "openapi-diff").symlink_to(ROOT / "tools" / "openapi-diff")
    (root / ".venv").symlink_to(venv)
    return root


def run_step(
    index: int, root: Path, tmp_path: Path, environment: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """The workflow's step ``index`` run as GitHub runs it: its shell in a file, by ``bash -e``
    (GitHub's default shell on Linux), in the checkout ``root``."""
    script = tmp_path / f"step-{index}.sh"
    script.write_text(STEPS[index]["run"])
    return subprocess.run(
        ["bash", "-e", str(script)],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def run_watch_step(root: Path, tmp_path: Path) -> tuple[int, dict[str, str], str]:
    """The step's exit status, the outputs it set and what it wrote to the run's summary."""
    outputs, step_summary = tmp_path / "github-output", tmp_path / "step-summary.md"
    outputs.touch()
    step_summary.touch()
    environment = {
        **os.environ,
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(step_summary),
    }
    done = run_step(WATCH_STEP, root, tmp_path, environment)
    written = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    return done.returncode, written, step_summary.read_text()


def later_steps_that_run(status: int, outputs: dict[str, str]) -> list[str]:
    """The steps after Watch that would run: none once a step failed (GitHub's implicit
    ``success()``); else those whose condition on the watch's status holds."""
    if status != 0:
        return []
    running = []
    for step in STEPS[WATCH_STEP + 1 :]:
        condition = step.get("if")
        if condition is not None:
            match = re.fullmatch(r"steps\.watch\.outputs\.status == '(\d)'", condition)
            assert match, f"the test reads conditions on the watch's status only: {condition}"
            if outputs.get("status") != match[1]:
                continue
        running.append(step["name"])
    return running


@pytest.fixture
def venv() -> Path:
    if sys.prefix == sys.base_prefix:
        pytest.skip("the Watch step runs .venv/bin/python: the tests must run in a venv")
    return Path(sys.prefix)


@pytest.mark.parametrize(
    ("path", "status", "said", "later"),
    [
        ("/reformatted.json", 0, "Stability's published documents are unchanged.\n", []),
        (
            "/credits-removed",
            1,
            "# Stability's published API documents changed\n\n**Breaking for this SDK:**",
            ["Regenerate and test", "Open or update the pull request"],
        ),
        ("/missing", 2, "The watch failed (status 2): see the log.\n", []),
    ],
    ids=["unchanged", "changed", "failed"],
)
def test_the_workflow_step_branches_on_the_watch_s_own_status(
    site: str, tmp_path: Path, venv: Path, path: str, status: int, said: str, later: list[str]
) -> None:
    root = checkout(tmp_path, f"{site}{path}", venv)
    step_status, outputs, step_summary = run_watch_step(root, tmp_path)
    assert outputs == {"status": str(status)}
    assert step_status == (2 if status == 2 else 0)
    assert step_summary.startswith(said)
    assert later_steps_that_run(step_status, outputs) == later
    copied = (root / "spec" / "upstream" / V1).read_bytes()
    if status == 1:
        assert step_summary == (root / "spec-watch.md").read_text()
        assert copied == Published.pages[path][2]  # --write: the pull request's change
    else:
        assert copied == (UPSTREAM / V1).read_bytes()


def test_the_workflow_step_fails_when_the_watch_cannot_start(site: str, tmp_path: Path) -> None:
    """Python's own status 1 (here: httpx2 is not installed) is not "changed"."""
    bare = tmp_path / "bare-venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=RUN_TIMEOUT
    )
    root = checkout(tmp_path, f"{site}/credits-removed", bare)
    step_status, outputs, step_summary = run_watch_step(root, tmp_path)
    assert step_status == 1
    assert outputs == {}
    assert step_summary.startswith("The watch failed before it compared anything (status 1")
    assert later_steps_that_run(step_status, outputs) == []


PR_STEP = next(i for i, step in enumerate(STEPS) if step.get("run") == "scripts/spec_watch_pr.sh")
CATALOGUE = Path("facade") / "stability_user" / "prices" / "catalogue.json"


def test_a_moved_price_reaches_the_pull_request_with_the_regenerated_catalogue(
    site: str, tmp_path: Path, venv: Path
) -> None:
    """The workflow on a price change: the Watch step, the price step of `make generate` (the
    rest of it remakes generated/ from openapi.yaml, which the watch leaves alone), then the
    pull request's script, pushing to a local repository through git's ``insteadOf`` and
    opening the pull request with a ``gh`` that records what it is asked."""
    root = checkout(
        tmp_path,
        f"{site}/reformatted.json",
        venv,
        serve("/ultra-at-9", v2beta_variant(_ultra_at_9)),
    )
    (root / CATALOGUE).parent.mkdir(parents=True)
    shutil.copy2(ROOT / CATALOGUE, root / CATALOGUE)
    shutil.copytree(
        ROOT / "generated", root / "generated", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(ROOT / "openapi.yaml", root)
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]

    def git(*args: str, cwd: Path = root) -> str:
        done = subprocess.run(
            ["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=True
        )
        return done.stdout

    git("init", "-q", "-b", "main")
    git("add", "scripts", "spec", "facade", "generated", "openapi.yaml")
    git("commit", "-q", "-m", "main")
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote))
    git("push", "-q", str(remote), "main")

    status, outputs, step_summary = run_watch_step(root, tmp_path)
    assert (status, outputs) == (0, {"status": "1"})
    assert "\n- generate/ultra: 8 to 9 credits per successful result\n" in step_summary
    regenerate = STEPS[PR_STEP - 1]["run"]
    assert "make generate" in regenerate
    subprocess.run(
        [str(root / ".venv" / "bin" / "python"), "scripts/price_catalogue.py"],
        cwd=root,
        check=True,
        timeout=RUN_TIMEOUT,
    )

    bin_folder, asked = tmp_path / "bin", tmp_path / "gh-asked"
    bin_folder.mkdir()
    (bin_folder / "gh").write_text('#!/bin/sh\necho "$*" >> "$GH_ASKED"\n')
    (bin_folder / "gh").chmod(0o755)
    assert set(STEPS[PR_STEP]["env"]) == {"GH_TOKEN", "REPOSITORY", "TESTS"}
    environment = {
        **os.environ,
        "GH_TOKEN": "token",
        "REPOSITORY": "owner/name",
        "TESTS": "0",
        "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}",
        "GH_ASKED": str(asked),
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.{remote}.insteadOf",
        "GIT_CONFIG_VALUE_0": "https://x-access-token:token@github.com/owner/name.git",
    }
    done = run_step(PR_STEP, root, tmp_path, environment)
    assert done.returncode == 0, done.stderr
    proposed = git("diff", "--name-only", "main", "spec-watch/update", cwd=remote).split()
    assert proposed == [str(CATALOGUE), "spec/upstream/sources.json", f"spec/upstream/{V2BETA}"]
    catalogue = json.loads(git("show", f"spec-watch/update:{CATALOGUE}", cwd=remote))
    assert [e["credits"] for e in catalogue["prices"] if e["name"] == "ultra"] == [9]
    published = Published.pages["/ultra-at-9"][2]
    assert catalogue["document"]["sha256"] == hashlib.sha256(published).hexdigest()
    assert "--body-file pull-request.md" in asked.read_text().splitlines()[-1]
    body = (root / "pull-request.md").read_text()
    assert body.startswith(step_summary)
    assert body.endswith("`make generate` and `make pytest` pass on this change.\n")


def test_the_step_before_the_watch_installs_what_it_runs() -> None:
    install = STEPS[WATCH_STEP - 1]["run"].split()
    assert install[0] == "make"
    # -p prints make's rules, -n runs nothing: the target exists, and what it depends on.
    listed = subprocess.run(
        ["make", "-pn", *install[1:]], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert listed.returncode == 0, listed.stderr
    target = re.search(rf"^{re.escape(install[-1])}: (.*)$", listed.stdout, re.MULTILINE)
    assert target is not None
    assert ".venv/.installed-stamp" in target[1]
    assert "tools/openapi-diff/node_modules/.package-lock.json" in target[1]

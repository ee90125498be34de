"""``scripts/spec_watch.py``, and the workflow step that runs it, against a loopback server
serving what Stability might publish: the copy reformatted, changes that leave the user API
alone, compatible and breaking ones, and what is not a document at all. Each run works on a copy
of ``spec/upstream/``."""

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

from support.doc_blocks import ROOT

pytestmark = pytest.mark.skipif(
    not (ROOT / "tools" / "openapi-diff" / "node_modules").is_dir(),
    reason="make spec-watch installs tools/openapi-diff (npm ci)",
)

V1 = "stability-rest-v1.openapi.json"
UPSTREAM = ROOT / "spec" / "upstream"
PUBLISHED: dict[str, Any] = json.loads((UPSTREAM / V1).read_text())
# Well inside pytest-timeout's 60 s: a watch that hangs fails the test with its own message.
RUN_TIMEOUT = 45


def variant(change: Callable[[dict[str, Any]], None]) -> bytes:
    document = copy.deepcopy(PUBLISHED)
    change(document)
    return json.dumps(document, indent=2).encode()


def _new_endpoint(document: dict[str, Any]) -> None:
    document["paths"]["/v1/generation/{engine_id}/sketch-to-image"] = {
        "post": {"tags": ["v1/generation"], "responses": {"200": {"description": "An image."}}}
    }


def _balance(document: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = document["components"]["schemas"]["BalanceResponseBody"]
    return body


def _optional_field(document: dict[str, Any]) -> None:
    _balance(document)["properties"]["currency"] = {"type": "string"}


def _credits_removed(document: dict[str, Any]) -> None:
    del _balance(document)["properties"]["credits"]
    del _balance(document)["required"]


def _credits_retyped(document: dict[str, Any]) -> None:
    _balance(document)["properties"]["credits"]["type"] = "string"


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
        status, kind, body = self.pages.get(self.path, (404, "text/plain", b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        if status in (301, 302):
            self.send_header("Location", body.decode())
            body = b""
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    reformatted = json.dumps(PUBLISHED, indent=1, sort_keys=True).encode()
    Published.pages = {
        "/reformatted.json": (200, "application/json", reformatted),
        "/reformatted.yaml": (200, "application/yaml", yaml.safe_dump(PUBLISHED).encode()),
        "/new-endpoint": (200, "application/json", variant(_new_endpoint)),
        "/optional-field": (200, "application/json", variant(_optional_field)),
        "/credits-removed": (200, "application/json", variant(_credits_removed)),
        "/credits-retyped": (200, "application/json", variant(_credits_retyped)),
        "/html": (200, "text/html", b"<!doctype html><title>API reference</title>"),
        "/not-openapi": (200, "application/json", b'{"openapi": "3.0.3"}'),
        "/to-http": (302, "text/plain", b"http://example.com/openapi.json"),
    }
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


def watch(upstream: Path, path: str, site: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SCRIPT, "--upstream", str(upstream), "--source", f"{V1}={site}{path}", *options],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def untouched(upstream: Path) -> bool:
    return all(
        (upstream / name).read_bytes() == (UPSTREAM / name).read_bytes()
        for name in ("sources.json", V1)
    )


@pytest.mark.parametrize("path", ["/reformatted.json", "/reformatted.yaml"])
def test_the_same_document_written_otherwise_is_unchanged(
    upstream: Path, site: str, path: str
) -> None:
    done = watch(upstream, path, site)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert f"{V1}: unchanged" in done.stderr
    assert "stability-rest-v1alpha.openapi.json: not published any more" in done.stderr
    assert untouched(upstream)


def test_a_new_generation_endpoint_leaves_the_user_api_alone(upstream: Path, site: str) -> None:
    done = watch(upstream, "/new-endpoint", site)
    assert done.returncode == 1, done.stderr
    assert "**The user API this SDK wraps is unchanged**" in done.stdout
    assert "- Operations added: `POST /v1/generation/{engine_id}/sketch-to-image`" in done.stdout
    assert "- In the tag this SDK wraps: nothing." in done.stdout
    assert "Breaking" not in done.stdout
    assert untouched(upstream)


def test_a_new_optional_field_on_the_balance_is_compatible(upstream: Path, site: str) -> None:
    done = watch(upstream, "/optional-field", site)
    assert done.returncode == 1, done.stderr
    assert "**The operations this SDK wraps changed compatibly**" in done.stdout
    assert "- Components: schemas changed: `BalanceResponseBody`" in done.stdout
    assert "- In the tag this SDK wraps: `schemas BalanceResponseBody`" in done.stdout
    assert "Breaking" not in done.stdout


@pytest.mark.parametrize("path", ["/credits-removed", "/credits-retyped"])
def test_credits_removed_or_retyped_breaks_a_client(upstream: Path, site: str, path: str) -> None:
    done = watch(upstream, path, site, "--summary", str(upstream / "summary.md"))
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("# Stability's published API documents changed\n\n**Breaking")
    assert (
        "- Breaking in the tag this SDK wraps: `response.body.scope.add at "
        "paths./v1/user/balance.get.responses.200.content.application/json.schema`"
    ) in done.stdout
    assert (upstream / "summary.md").read_text() == done.stdout
    assert untouched(upstream)  # without --write


def test_write_replaces_the_copy_and_its_digest_and_the_contract_tests_say_why(
    upstream: Path, site: str
) -> None:
    done = watch(upstream, "/credits-retyped", site, "--write")
    assert done.returncode == 1, done.stderr
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
        timeout=120,
        check=False,
    )
    assert tests.returncode == 1
    assert "passed" in tests.stdout  # the digest check: the copy is as recorded
    failed = "FAILED tests/test_spec.py::test_response_schemas_match[BalanceResponseBody-v1/user]"
    assert failed in tests.stdout
    assert watch(upstream, "/credits-retyped", site).returncode == 0  # now the copy


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/missing", "HTTP 404"),
        ("/hang", "ReadTimeout"),
        ("/html", "not an OpenAPI 3 document"),
        ("/not-openapi", "not an OpenAPI 3 document"),
        ("/huge", "larger than 10 MiB"),
        ("/to-http", "redirected to http://example.com/openapi.json, not https"),
    ],
)
def test_what_is_not_a_published_document_is_exit_2_and_nothing_is_written(
    upstream: Path, site: str, path: str, reason: str
) -> None:
    done = watch(upstream, path, site, "--write", "--timeout", "1")
    assert done.returncode == 2
    assert reason in done.stderr
    assert done.stderr.endswith("; nothing written\n")
    assert untouched(upstream)


def test_only_https_is_fetched_beyond_this_machine(upstream: Path, site: str) -> None:
    done = subprocess.run(
        [*SCRIPT, "--upstream", str(upstream), "--source", f"{V1}=http://example.com/openapi.json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "http://example.com/openapi.json: not an https:// URL" in done.stderr


# The scheduled workflow's Watch step, run as GitHub runs it (`bash -e`), in a checkout of its
# own whose v1 document is published on the loopback server: the status each case produces,
# what the step makes of it, and which of the later steps would run.

WORKFLOW = ROOT / ".github" / "workflows" / "spec-watch.yml"
STEPS: list[dict[str, Any]] = yaml.safe_load(WORKFLOW.read_text())["jobs"]["watch"]["steps"]
WATCH_STEP = next(i for i, step in enumerate(STEPS) if step.get("id") == "watch")


def checkout(tmp_path: Path, url: str, venv: Path) -> Path:
    """What the Watch step finds in the runner's checkout: the watch's scripts (copies, so that
    the spec/upstream/ they follow is this one's), spec/upstream/ with the v1 document's URL
    ``url``, openapi-diff, and the virtual environment ``venv`` as ``.venv``."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "spec_watch.py", root / "scripts")
    shutil.copytree(UPSTREAM, root / "spec" / "upstream")
    sources = json.loads((UPSTREAM / "sources.json").read_text())
    sources[V1]["url"] = url
    (root / "spec" / "upstream" / "sources.json").write_text(json.dumps(sources, indent=2) + "\n")
    (root / "tools").mkdir()
    (root / "tools" / "openapi-diff").symlink_to(ROOT / "tools" / "openapi-diff")
    (root / ".venv").symlink_to(venv)
    return root


def run_watch_step(root: Path, tmp_path: Path) -> tuple[int, dict[str, str], str]:
    """The step's exit status, the outputs it set and what it wrote to the run's summary."""
    script = tmp_path / "watch-step.sh"
    script.write_text(STEPS[WATCH_STEP]["run"])
    outputs, step_summary = tmp_path / "github-output", tmp_path / "step-summary.md"
    outputs.touch()
    step_summary.touch()
    environment = {
        **os.environ,
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(step_summary),
    }
    done = subprocess.run(
        ["bash", "-e", str(script)],  # GitHub's default shell on Linux
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
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

"""The stand-in answers as the published documents say: Schemathesis against it on loopback.

Schemathesis generates requests from a document (examples, boundary and negative cases,
missing auth, other methods) and checks every answer: status codes, content types, schemas,
405s with ``Allow``. It runs as its command line does, against a real loopback server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer

ROOT = Path(__file__).resolve().parent.parent
V1_DOCUMENT = ROOT / "spec" / "upstream" / "stability-rest-v1.openapi.json"


@pytest.fixture(scope="module")
def server() -> Iterator[StandInServer]:
    with StandInAPI.sample().serve() as serving:
        yield serving


def schemathesis(
    document: Path, server: StandInServer, workdir: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            str(document),
            "--url",
            server.url,
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {SAMPLE_API_KEY}",
            "--max-examples",
            "40",
            "--seed",
            "20261126",
            "--continue-on-failure",
            *options,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_stand_in_conforms_to_openapi_yaml(server: StandInServer, tmp_path: Path) -> None:
    # Our document lists the 403, 404 and 429 the API answers: every check applies.
    result = schemathesis(ROOT / "openapi.yaml", server, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "No issues found" in result.stdout


def corrected_v1_document(target: Path) -> Path:
    """The published v1 document with its one defect corrected, and nothing else changed.

    Its ``Error`` schema requires a ``status`` property it never defines, and that no error
    body of the API carries (``{"id", "name", "message"}``, as its own examples show).
    """
    document: dict[str, Any] = json.loads(V1_DOCUMENT.read_text())
    required = document["components"]["schemas"]["Error"]["required"]
    assert "status" in required
    assert "status" not in document["components"]["schemas"]["Error"]["properties"]
    required.remove("status")
    target.write_text(json.dumps(document))
    return target


def test_the_stand_in_conforms_to_the_published_v1_document(
    server: StandInServer, tmp_path: Path
) -> None:
    document = corrected_v1_document(tmp_path / "v1.json")
    # Only status codes the published document does not list (403 for a foreign organization)
    # are allowed to differ: those are the project's additions from observed behaviour.
    result = schemathesis(
        document,
        server,
        tmp_path,
        "--include-path-regex",
        "^/v1/user/",
        "--exclude-checks",
        "status_code_conformance",
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "No issues found" in result.stdout
    assert "Selected: 2/" in result.stdout

"""The check by Atlassian's openapi-diff (``tools/openapi-diff``): its breaking differences,
in the wrapped operations or elsewhere in the document. A document of which this SDK wraps no
operation (``tag`` ``None``: the v2beta one, vendored for its prices) is not given to it: its
breaking differences would count toward no verdict, and a run takes seconds.

openapi-diff reads nothing of parameters or enum values (the ``contract`` check does), and
cannot follow a ``$ref`` cycle, which OpenAPI allows: it is given the documents with their
cycles cut, and a note says where.
"""

from __future__ import annotations

import copy
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from spec_checks.base import CheckError, Documents, Finding, Impact, pointer, tagged

__all__ = ["DIFF", "openapi_diff"]

DIFF = Path(__file__).resolve().parents[2] / "tools" / "openapi-diff" / "diff.cjs"


def openapi_diff(documents: Documents) -> list[Finding]:
    """openapi-diff's breaking differences, each said where it found it; none where this SDK
    wraps nothing."""
    if documents.tag is None:
        return []
    old, old_cuts = _without_cycles(documents.old)
    new, new_cuts = _without_cycles(documents.new)
    report = _run(old, new)
    wrapped = [name.split(" ", 1) for name in tagged(documents)]
    findings: list[Finding] = []
    for verdict in report.get("breakingDifferences", []):
        details = verdict["sourceSpecEntityDetails"] + verdict["destinationSpecEntityDetails"]
        location = details[0]["location"] if details else "?"
        in_tag = any(
            location == f"paths.{path}" or location.startswith(f"paths.{path}.{method.lower()}")
            for method, path in wrapped
        )
        text = f"`{verdict['code']}` at `{location}`"
        finding = Finding(Impact.BREAKING, text, in_tag, source="openapi-diff")
        if finding not in findings:
            findings.append(finding)
    if cuts := sorted(set(old_cuts) | set(new_cuts)):
        text = (
            "it cannot follow a `$ref` cycle, so it compared the documents with theirs cut at "
            + ", ".join(f"`{cut}`" for cut in cuts)
            + " (the check of the operations this SDK wraps follows them)"
        )
        findings.append(Finding(Impact.NOTE, text, in_tag=False, source="openapi-diff"))
    return findings


def _without_cycles(document: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``document`` whose ``$ref`` cycles are cut (each reference that closes one
    made ``{}``), and the references cut."""
    result = copy.deepcopy(document)
    cut: list[str] = []
    following: dict[str, bool] = {}  # reference -> still being followed

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#"):
                if following.get(reference):
                    node.clear()
                    cut.append(reference)
                    return
                if reference not in following:
                    following[reference] = True
                    walk(pointer(result, reference))
                    following[reference] = False
            for value in list(node.values()):
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(result)
    return result, cut


def _run(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for name, document in (("old.json", old), ("new.json", new)):
            path = Path(folder) / name
            path.write_text(json.dumps(document), encoding="ascii")
            paths.append(str(path))
        done = subprocess.run(
            ["node", str(DIFF), *paths], capture_output=True, text=True, timeout=300, check=False
        )
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError as error:
        raise CheckError(f"openapi-diff failed: {done.stderr.strip()[-500:]}") from error
    if "error" in report:
        raise CheckError(f"not a valid OpenAPI document: {report['error']}")
    return report

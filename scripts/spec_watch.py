"""`make spec-watch`: has Stability changed the API documents it publishes since we copied them?

For each document vendored in ``spec/upstream/`` (``sources.json`` there records where it was
published, the ``v1/user``-style tag this SDK wraps in it, when it was copied and the copy's
SHA-256), download the published one (timeouts, a size limit, redirects to https only), compare
it with the copy by content (key order and whitespace normalised) and report:

- exit 0: unchanged;
- exit 1: changed; a Markdown summary (stdout, and ``--summary FILE``) says which operations,
  parameters, schemas and responses changed, which of them are in the tag this SDK wraps, and
  which break a client (Atlassian's openapi-diff, ``tools/openapi-diff``, classifies them);
- exit 2: a document could not be had, or is not an OpenAPI document; nothing is written.

``--write`` replaces the vendored copies that changed and updates ``sources.json``;
``--source FILE=URL`` (repeatable) fetches FILE's document from URL instead (a mirror, a test's
loopback server), and is the only way to watch a document with no published URL any more.
Progress and errors go to stderr; stdout holds the summary alone.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import ipaddress
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import yaml

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = ROOT / "spec" / "upstream"
DIFF = ROOT / "tools" / "openapi-diff" / "diff.cjs"

EXIT_UNCHANGED, EXIT_CHANGED, EXIT_FAILED = 0, 1, 2
# A published document is ~100 KB; anything past this is not one.
MAX_BYTES = 10 * 1024 * 1024
TIMEOUT = 20.0
MAX_REDIRECTS = 5
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class WatchError(Exception):
    """A document that could not be had, or is not an OpenAPI document."""


@dataclass
class Changes:
    """How one document changed: operations (``METHOD /path``), component parameters, schemas
    and responses by name, each added, removed or changed; what of it this SDK's tag holds; and
    openapi-diff's verdicts (``code at location``) that break a client."""

    operations: dict[str, list[str]] = field(default_factory=dict)
    components: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    in_tag: list[str] = field(default_factory=list)
    breaking: list[str] = field(default_factory=list)
    breaking_in_tag: list[str] = field(default_factory=list)


def local(url: str) -> bool:
    host = httpx2.URL(url).host
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fetch(url: str, timeout: float = TIMEOUT) -> bytes:
    """The document at ``url``: https (or http on loopback, for tests), redirected only to
    https, at most ``MAX_BYTES``, each wait at most ``timeout`` seconds."""
    if not (url.startswith("https://") or (url.startswith("http://") and local(url))):
        raise WatchError(f"{url}: not an https:// URL")
    limits = httpx2.Timeout(timeout, connect=min(timeout, 10.0))
    with httpx2.Client(timeout=limits, follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                with client.stream("GET", url, headers={"Accept": "application/json"}) as answer:
                    if answer.is_redirect:
                        target = str(answer.url.join(answer.headers.get("location", "")))
                        if not target.startswith("https://"):
                            raise WatchError(f"{url}: redirected to {target}, not https")
                        url = target
                        continue
                    if answer.status_code != 200:
                        raise WatchError(f"{url}: HTTP {answer.status_code}")
                    body = bytearray()
                    for chunk in answer.iter_bytes():
                        body += chunk
                        if len(body) > MAX_BYTES:
                            raise WatchError(f"{url}: larger than {MAX_BYTES // 2**20} MiB")
                    return bytes(body)
            except httpx2.HTTPError as error:
                raise WatchError(f"{url}: {type(error).__name__}: {error}") from error
    raise WatchError(f"{url}: more than {MAX_REDIRECTS} redirects")


def as_openapi(raw: bytes, where: str) -> dict[str, Any]:
    """``raw`` as an OpenAPI 3 document (JSON, or YAML), else ``WatchError``."""
    try:
        document = yaml.safe_load(raw.decode("utf-8"))  # JSON is YAML
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise WatchError(f"{where}: not JSON or YAML ({type(error).__name__})") from error
    if not (
        isinstance(document, dict)
        and str(document.get("openapi", "")).startswith("3.")
        and isinstance(document.get("paths"), dict)
    ):
        raise WatchError(f"{where}: not an OpenAPI 3 document")
    return document


def normalized(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for path, item in document["paths"].items():
        for method in METHODS:
            if isinstance(item, dict) and method in item:
                found[f"{method.upper()} {path}"] = {
                    **item[method],
                    "parameters": [
                        *item.get("parameters", []),
                        *item[method].get("parameters", []),
                    ],
                }
    return found


def _references(node: Any, document: dict[str, Any], seen: set[str]) -> set[str]:
    """Every ``#/components/...`` reached from ``node``, following references."""
    if isinstance(node, dict):
        reference = node.get("$ref")
        if (
            isinstance(reference, str)
            and reference.startswith("#/components/")
            and reference not in seen
        ):
            seen.add(reference)
            target: Any = document
            for part in reference[2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            _references(target, document, seen)
        for value in node.values():
            _references(value, document, seen)
    elif isinstance(node, list):
        for value in node:
            _references(value, document, seen)
    return seen


def _sorted_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[str]]:
    changes = {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "changed": sorted(
            name for name in set(old) & set(new) if normalized(old[name]) != normalized(new[name])
        ),
    }
    return {kind: names for kind, names in changes.items() if names}


def compare(
    old: dict[str, Any], new: dict[str, Any], tag: str, verdicts: dict[str, Any]
) -> Changes:
    """What changed from ``old`` to ``new``; ``verdicts`` is openapi-diff's report."""
    changes = Changes(operations=_sorted_changes(_operations(old), _operations(new)))
    for kind in ("parameters", "schemas", "responses"):
        found = _sorted_changes(
            old.get("components", {}).get(kind, {}), new.get("components", {}).get(kind, {})
        )
        if found:
            changes.components[kind] = found
    tagged: set[str] = set()
    used: set[str] = set()  # the components the tag's operations reach, in either document
    for document in (old, new):
        for name, operation in _operations(document).items():
            if tag in operation.get("tags", []):
                tagged.add(name)
                _references(operation, document, used)
    touched = {name for names in changes.operations.values() for name in names}
    changes.in_tag = sorted(touched & tagged) + sorted(
        f"{kind} {name}"
        for kind, found in changes.components.items()
        for names in found.values()
        for name in names
        if f"#/components/{kind}/{name}" in used
    )
    for verdict in verdicts.get("breakingDifferences", []):
        details = verdict["sourceSpecEntityDetails"] + verdict["destinationSpecEntityDetails"]
        location = details[0]["location"] if details else "?"
        line = f"{verdict['code']} at {location}"
        if line not in changes.breaking:
            changes.breaking.append(line)
        parts = location.split(".")
        if len(parts) >= 3 and parts[0] == "paths":
            path, method = parts[1], parts[2]
            if f"{method.upper()} {path}" in tagged and line not in changes.breaking_in_tag:
                changes.breaking_in_tag.append(line)
    return changes


def classify(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """openapi-diff's report from ``old`` to ``new`` (``tools/openapi-diff``)."""
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for name, document in (("old.json", old), ("new.json", new)):
            path = Path(folder) / name
            path.write_text(json.dumps(document))
            paths.append(str(path))
        done = subprocess.run(
            ["node", str(DIFF), *paths], capture_output=True, text=True, timeout=300, check=False
        )
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError as error:
        raise WatchError(f"openapi-diff failed: {done.stderr.strip()[-500:]}") from error
    if "error" in report:
        raise WatchError(f"not a valid OpenAPI document: {report['error']}")
    return report


def _list(title: str, names: list[str]) -> list[str]:
    return [f"- {title}: " + ", ".join(f"`{name}`" for name in names)] if names else []


def summary(results: dict[str, tuple[str, Changes]]) -> str:
    """The Markdown a pull request carries: the verdict first, then each document."""
    broken = any(changes.breaking_in_tag for _, changes in results.values())
    touched = any(changes.in_tag for _, changes in results.values())
    if broken:
        verdict = (
            "**Breaking for this SDK:** an operation it wraps changed in a way a client can "
            "break on. The wire-contract tests fail until `openapi.yaml` and the facade are "
            "brought along."
        )
    elif touched:
        verdict = (
            "**The operations this SDK wraps changed compatibly**: regenerate, let "
            "`openapi.yaml` follow, release."
        )
    else:
        verdict = "**The user API this SDK wraps is unchanged**: only the copies move."
    lines = ["# Stability's published API documents changed", "", verdict]
    for name, (url, changes) in results.items():
        lines += ["", f"## `{name}`", "", f"From <{url}>.", ""]
        for kind, names in changes.operations.items():
            lines += _list(f"Operations {kind}", names)
        for component, found in changes.components.items():
            for kind, names in found.items():
                lines += _list(f"Components: {component} {kind}", names)
        lines += _list("In the tag this SDK wraps", changes.in_tag) or [
            "- In the tag this SDK wraps: nothing."
        ]
        lines += _list("Breaking for a client (openapi-diff)", changes.breaking)
        lines += _list("Breaking in the tag this SDK wraps", changes.breaking_in_tag)
    return "\n".join(lines) + "\n"


def _sources(upstream: Path) -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = json.loads((upstream / "sources.json").read_text())
    return loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spec_watch.py", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="replace the copies that changed")
    parser.add_argument(
        "--source", action="append", default=[], metavar="FILE=URL", help="fetch FILE from URL"
    )
    parser.add_argument("--summary", metavar="PATH", help="write the Markdown summary here too")
    parser.add_argument(
        "--upstream", type=Path, default=UPSTREAM, help="the vendored copies' folder"
    )
    parser.add_argument(
        "--timeout", type=float, default=TIMEOUT, help="the longest wait for a server, seconds"
    )
    args = parser.parse_args(argv)
    upstream: Path = args.upstream
    sources = _sources(upstream)
    overrides = {}
    for given in args.source:
        name, equals, url = given.partition("=")
        if not equals or name not in sources:
            parser.error(f"--source {given!r}: FILE=URL, FILE one of {', '.join(sorted(sources))}")
        overrides[name] = url
    fetched: dict[str, tuple[str, bytes, dict[str, Any]]] = {}
    for name, source in sources.items():
        url = overrides.get(name) or source.get("url")
        if not url:
            retired = source.get("retired", "no URL")
            print(f"{name}: not published any more ({retired}); skipped", file=sys.stderr)
            continue
        try:
            raw = fetch(url, args.timeout)
            fetched[name] = (url, raw, as_openapi(raw, url))
        except WatchError as error:
            print(f"spec watch: {name}: {error}; nothing written", file=sys.stderr)
            return EXIT_FAILED
    results: dict[str, tuple[str, Changes]] = {}
    for name, (url, _, document) in fetched.items():
        copy = json.loads((upstream / name).read_text())
        if normalized(copy) == normalized(document):
            print(f"{name}: unchanged ({url})", file=sys.stderr)
            continue
        try:
            verdicts = classify(copy, document)
        except WatchError as error:
            print(f"spec watch: {name}: {error}; nothing written", file=sys.stderr)
            return EXIT_FAILED
        results[name] = (url, compare(copy, document, sources[name]["tag"], verdicts))
    if not results:
        return EXIT_UNCHANGED
    text = summary(results)
    print(text, end="")
    if args.summary:
        Path(args.summary).write_text(text)
    if args.write:
        today = datetime.datetime.now(datetime.UTC).date().isoformat()
        for name in results:
            raw = fetched[name][1]
            (upstream / name).write_bytes(raw)
            sources[name].update(copied=today, sha256=hashlib.sha256(raw).hexdigest())
        (upstream / "sources.json").write_text(json.dumps(sources, indent=2) + "\n")
    return EXIT_CHANGED


if __name__ == "__main__":
    sys.exit(main())

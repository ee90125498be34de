"""`make spec-watch`: has Stability changed the API documents it publishes since we copied them?

For each document vendored in ``spec/upstream/`` (``sources.json`` there records where it was
published, the ``v1/user``-style tag this SDK wraps in it, when it was copied and the copy's
SHA-256), download the published one (timeouts, a size limit, redirects to https only), compare
it with the copy by content (key order and whitespace normalised) and report:

- exit 0: unchanged;
- exit 1: changed; a Markdown summary (stdout, and ``--summary FILE``) says the verdict for the
  operations this SDK wraps, then each change to them in plain words and how grave it is for a
  client, then what moved in the whole document (``spec_checks`` holds the checks);
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
import sys
from pathlib import Path
from typing import Any

import httpx2
import yaml
from spec_checks import CHECKS
from spec_checks.base import CheckError, Documents, normalized
from spec_checks.report import Comparison, compare, summary

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = ROOT / "spec" / "upstream"

EXIT_UNCHANGED, EXIT_CHANGED, EXIT_FAILED = 0, 1, 2
# A published document is ~100 KB; anything past this is not one.
MAX_BYTES = 10 * 1024 * 1024
TIMEOUT = 20.0
MAX_REDIRECTS = 5


class WatchError(Exception):
    """A document that could not be had, or is not an OpenAPI document."""


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
    results: dict[str, tuple[str, str, Comparison]] = {}
    for name, (url, _, document) in fetched.items():
        copy = json.loads((upstream / name).read_text())
        if normalized(copy) == normalized(document):
            print(f"{name}: unchanged ({url})", file=sys.stderr)
            continue
        tag = sources[name]["tag"]
        try:
            results[name] = (url, tag, compare(Documents(copy, document, tag), CHECKS))
        except CheckError as error:
            print(f"spec watch: {name}: {error}; nothing written", file=sys.stderr)
            return EXIT_FAILED
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

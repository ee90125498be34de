"""`make spec-watch`: has Stability changed the API documents it publishes since we copied them?

For each document vendored in ``spec/upstream/`` (``sources.json`` there records where it was
published, the ``v1/user``-style tag this SDK wraps in it or ``null``, when it was copied and the
copy's SHA-256), download the published one (a total deadline, a size limit, redirects to https
only), read it as the copy is written (JSON as JSON; YAML only where the copy is YAML), compare it
with the copy by content (key order, whitespace and the way numbers are written aside) and
report:

- exit 0: unchanged;
- exit 1: changed; a Markdown summary (stdout, and ``--summary FILE``) says the verdict for the
  operations this SDK wraps, and that a release is needed where a price moved; then each change
  to them in plain words and how grave it is for a client, each price that moved, then what
  moved in the whole document (``spec_checks`` holds the checks);
- exit 2: a document could not be had, is not an OpenAPI document, could not be compared (a
  price ``make generate`` could not read either: the line names its operation), or the summary
  or a copy could not be written; or anything unexpected. One line on stderr says which;
  nothing is written unless it says otherwise.

``make spec-watch`` reports any failure of a recipe as its own status 2: whoever branches on the
status (the scheduled workflow) runs this script, not make.

``--write`` replaces the vendored copies that changed and updates ``sources.json``;
``--source FILE=URL`` (repeatable) fetches FILE's document from URL instead (a mirror, a test's
loopback server), and is the only way to watch a document with no published URL any more.
Progress and errors go to stderr; stdout holds the summary alone.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import ipaddress
import json
import math
import re
import sys
import traceback
from pathlib import Path
from typing import Any

import httpx2
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
YAML_SUFFIXES = (".yaml", ".yml")


class WatchError(Exception):
    """A document that could not be had, read or compared, or a file that could not be
    written: the line to print."""


def local(url: str) -> bool:
    host = httpx2.URL(url).host
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fetch(url: str, timeout: float = TIMEOUT, accept: str = "application/json") -> bytes:
    """The document at ``url``: https (or http on loopback, for tests), redirected only to
    https, at most ``MAX_BYTES``, all of it within ``timeout`` seconds (a body that trickles
    in meets the deadline as one that never comes)."""
    if not (url.startswith("https://") or (url.startswith("http://") and local(url))):
        raise WatchError(f"{url}: not an https:// URL")
    try:
        return asyncio.run(_download(url, timeout, accept))
    except TimeoutError as error:
        raise WatchError(f"{url}: not downloaded within {timeout:g} s") from error


async def _download(url: str, timeout: float, accept: str) -> bytes:
    async with (
        asyncio.timeout(timeout),
        httpx2.AsyncClient(timeout=None, follow_redirects=False, trust_env=False) as client,
    ):
        for _ in range(MAX_REDIRECTS + 1):
            try:
                async with client.stream("GET", url, headers={"Accept": accept}) as answer:
                    if answer.is_redirect:
                        target = str(answer.url.join(answer.headers.get("location", "")))
                        if not target.startswith("https://"):
                            raise WatchError(f"{url}: redirected to {target}, not https")
                        url = target
                        continue
                    if answer.status_code != 200:
                        raise WatchError(f"{url}: HTTP {answer.status_code}")
                    body = bytearray()
                    async for chunk in answer.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_BYTES:
                            raise WatchError(f"{url}: larger than {MAX_BYTES // 2**20} MiB")
                    return bytes(body)
            except httpx2.HTTPError as error:
                raise WatchError(f"{url}: {type(error).__name__}: {error}") from error
    raise WatchError(f"{url}: more than {MAX_REDIRECTS} redirects")


def read(raw: bytes, where: str, yaml_allowed: bool = False) -> dict[str, Any]:
    """``raw`` as an OpenAPI 3 document: JSON, or YAML where ``yaml_allowed`` (a copy written
    in YAML), else ``WatchError``."""
    try:
        text = raw.decode("utf-8-sig")
        document = _yaml(text) if yaml_allowed else _json(text)
    except RecursionError as error:
        raise WatchError(f"{where}: nested too deeply to read") from error
    except UnicodeDecodeError as error:
        raise WatchError(f"{where}: not UTF-8 ({error.reason} at byte {error.start})") from error
    except ValueError as error:
        raise WatchError(f"{where}: {error}") from error
    if not (
        isinstance(document, dict)
        and str(document.get("openapi", "")).startswith("3.")
        and isinstance(document.get("paths"), dict)
    ):
        raise WatchError(f"{where}: not an OpenAPI 3 document")
    return document


def _json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_constant)
    except ValueError as error:  # json.JSONDecodeError, or NaN and Infinity, which JSON has not
        raise ValueError(f"not JSON ({error})") from error


def _constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


# YAML 1.2 reads 1e6 and 1e-7 as numbers, as JSON does; PyYAML follows YAML 1.1, which wants a
# dot and a signed exponent (1.0e+6) and reads the others as strings.
_FLOAT = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$")


def _yaml(text: str) -> Any:
    import yaml  # only a copy written in YAML needs it

    class Loader(yaml.SafeLoader):
        """PyYAML's safe loader, with YAML 1.2's floats."""

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    try:
        return yaml.load(text, Loader=Loader)  # a SafeLoader
    except yaml.YAMLError as error:
        raise ValueError(" ".join(f"not YAML ({error})".split())) from error


def _seconds(given: str) -> float:
    seconds = float(given)
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"{given!r} is not a positive number of seconds")
    return seconds


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
        "--timeout",
        type=_seconds,
        default=TIMEOUT,
        help="the longest a document's whole download may take, seconds",
    )
    args = parser.parse_args(argv)
    try:
        return _watch(parser, args)
    except WatchError as error:
        print(f"spec watch: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # 1 means "changed" to the workflow: never a crash
        traceback.print_exc()
        print(f"spec watch: unexpected error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED


def _watch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    upstream: Path = args.upstream
    sources = _sources(upstream)
    overrides = {}
    for given in args.source:
        name, equals, url = given.partition("=")
        if not equals or name not in sources:
            parser.error(f"--source {given!r}: FILE=URL, FILE one of {', '.join(sorted(sources))}")
        overrides[name] = url
    fetched = _fetch_all(sources, overrides, args.timeout)
    results: dict[str, tuple[str, str | None, Comparison]] = {}
    for name, (url, _, document) in fetched.items():
        vendored = upstream / name
        try:
            copy = read(vendored.read_bytes(), str(vendored), name.endswith(YAML_SUFFIXES))
            if normalized(copy) == normalized(document):
                print(f"{name}: unchanged ({url})", file=sys.stderr)
                continue
            tag = sources[name]["tag"]
            results[name] = (url, tag, compare(Documents(copy, document, tag, name), CHECKS))
        except (WatchError, CheckError) as error:
            raise WatchError(f"{name}: {error}; nothing written") from error
        except RecursionError as error:
            raise WatchError(f"{name}: nested too deeply to compare; nothing written") from error
    if not results:
        return EXIT_UNCHANGED
    text = summary(results)
    if args.summary:
        try:
            Path(args.summary).write_text(text, encoding="utf-8")
        except OSError as error:
            raise WatchError(
                f"cannot write the summary to {args.summary}: {error.strerror or error}; "
                "nothing written"
            ) from error
    sys.stdout.write(text)
    if args.write:
        _write(upstream, sources, {name: fetched[name][1] for name in results})
    return EXIT_CHANGED


def _fetch_all(
    sources: dict[str, dict[str, Any]], overrides: dict[str, str], timeout: float
) -> dict[str, tuple[str, bytes, dict[str, Any]]]:
    """Each published document that has a URL: where it was fetched, its bytes, and what
    they read as."""
    fetched = {}
    for name, source in sources.items():
        url = overrides.get(name) or source.get("url")
        if not url:
            retired = source.get("retired", "no URL")
            print(f"{name}: not published any more ({retired}); skipped", file=sys.stderr)
            continue
        yaml_allowed = name.endswith(YAML_SUFFIXES)
        accept = "application/yaml, application/json" if yaml_allowed else "application/json"
        try:
            raw = fetch(url, timeout, accept)
            fetched[name] = (url, raw, read(raw, url, yaml_allowed))
        except WatchError as error:
            raise WatchError(f"{name}: {error}; nothing written") from error
    return fetched


def _write(upstream: Path, sources: dict[str, dict[str, Any]], copies: dict[str, bytes]) -> None:
    """Replace the copies that changed with what was published, byte for byte, and record
    them in ``sources.json``."""
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    try:
        for name, raw in copies.items():
            (upstream / name).write_bytes(raw)
            sources[name].update(copied=today, sha256=hashlib.sha256(raw).hexdigest())
        (upstream / "sources.json").write_text(json.dumps(sources, indent=2) + "\n")
    except OSError as error:
        raise WatchError(
            f"cannot write {error.filename or upstream}: {error.strerror or error}; "
            f"{upstream} may be partly updated"
        ) from error


if __name__ == "__main__":
    sys.exit(main())

"""The test matrix `make test` runs: the suite on each supported Python, and once more with the
lowest dependency versions the package declares.

Interpreters are found on PATH and in pyenv's versions folder. On CI (``CI`` set) a missing one
is an error; elsewhere nox says which it skipped.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
PYTHONS = ["3.11", "3.12", "3.13"]
# The lower bounds in pyproject.toml's dependencies and the aiohttp, mcp and alerts extras, kept
# working by the `lowest` session (httpx2 pins its httpcore2 to its own version, aiohttp 3.12
# needs a multidict before 7, and mcp pins its mcp-types to its own version, so those follow).
LOWEST = {
    "httpx2": "2.15.1",
    "httpcore2": "2.15.1",
    "attrs": "23.1.0",
    "aiohttp": "3.12.15",
    "multidict": "6.9.1",
    "mcp": "2.1.0",
    "mcp-types": "2.1.0",
    "apprise": "2.0.0",
}

nox.options.sessions = [*(f"tests-{python}" for python in PYTHONS), "lowest"]
nox.options.error_on_missing_interpreters = bool(os.environ.get("CI"))
nox.options.reuse_existing_virtualenvs = True


def _add_pyenv_interpreters() -> None:
    # pyenv's shims only answer for the versions a `.python-version` selects; its installed
    # versions' own bin folders always work.
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if versions.is_dir():
        found = [str(p / "bin") for p in sorted(versions.iterdir()) if (p / "bin").is_dir()]
        os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


_add_pyenv_interpreters()


def _install(session: nox.Session, constraints: Path) -> None:
    session.install("--disable-pip-version-check", "-q", f"pip=={_pin('pip')}")
    session.install(
        "--disable-pip-version-check", "-q", "-c", str(constraints), "--group", "test", "-e", "."
    )


def _pin(name: str) -> str:
    match = re.search(rf"^{re.escape(name)}==(\S+)$", CONSTRAINTS.read_text(), re.MULTILINE)
    assert match, f"{name} is not pinned in {CONSTRAINTS}"
    return match.group(1)


# The first Python runs every test and measures branch coverage (subprocesses included); the
# others, and the lowest versions, run the package's tests without it: coverage of subprocesses
# doubled their time, and the project's own tools (the `tooling` marker: the spec watch, the
# wheel's build) are not the package, whose Python the other sessions are there to vary.
_ONCE = ["-m", "not tooling"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The suite: on the first Python all of it with branch coverage of the facade; on the
    others the package's tests."""
    _install(session, CONSTRAINTS)
    if session.python == PYTHONS[0]:
        session.run("pytest", "--cov", "--cov-report=term", "--cov-fail-under=95", *session.posargs)
    else:
        session.run("pytest", *_ONCE, *session.posargs)


@nox.session(python=PYTHONS[0])
def lowest(session: nox.Session) -> None:
    """The suite against the lowest declared versions of the runtime dependencies."""
    pins = CONSTRAINTS.read_text()
    for name, version in LOWEST.items():
        pins = re.sub(rf"^{name}==\S+$", f"{name}=={version}", pins, flags=re.MULTILINE)
    with tempfile.TemporaryDirectory() as folder:
        lowest_constraints = Path(folder) / "constraints-lowest.txt"
        lowest_constraints.write_text(pins)
        _install(session, lowest_constraints)
    versions = session.run(
        "python",
        "-c",
        "from importlib.metadata import version; "
        f"print(' '.join(version(name) for name in {tuple(LOWEST)!r}))",
        silent=True,
    )
    expected = " ".join(LOWEST.values())
    if versions is None or versions.strip() != expected:
        session.error(f"expected {', '.join(LOWEST)} {expected}, got {versions!r}")
    session.run("pytest", *_ONCE, *session.posargs)

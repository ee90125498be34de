"""What a user installs: the wheel and sdist `python -m build` makes from this tree."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from importlib.metadata import version
from pathlib import Path

import pytest

import stability_user

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"

pytestmark = pytest.mark.tooling  # the build is the same on each Python: once per run


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def wheel_metadata(dist: Path) -> tuple[list[str], dict[str, list[str]]]:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        message = Parser().parsestr(archive.read(metadata_name).decode())
    fields: dict[str, list[str]] = {}
    for key, value in message.items():
        fields.setdefault(key, []).append(value)
    return names, fields


def test_the_wheel_carries_the_licence_and_both_py_typed(dist: Path) -> None:
    names, fields = wheel_metadata(dist)
    assert "stability_user/py.typed" in names
    assert "stability_user_client/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert fields["License-File"] == ["LICENSE"]
    assert fields["License-Expression"] == ["MIT"]


def test_the_metadata_is_what_twine_6_accepts_and_complete(dist: Path) -> None:
    _, fields = wheel_metadata(dist)
    assert fields["Metadata-Version"] == ["2.4"]
    assert fields["Version"] == [stability_user.__version__] == [version("stability-user")]
    classifiers = fields["Classifier"]
    for python in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {python}" in classifiers
    assert any(c.startswith("Development Status ::") for c in classifiers)
    urls = {url.split(",", 1)[0] for url in fields["Project-URL"]}
    assert {"Repository", "Issues", "Changelog", "Documentation"} <= urls
    assert fields["Author-email"]
    # Users get the runtime dependencies only: the development tools are dependency groups.
    runtime = [r for r in fields["Requires-Dist"] if "extra ==" not in r]
    assert sorted(r.split(">")[0].split("<")[0] for r in runtime) == ["attrs", "httpx2"]
    assert [r for r in runtime if r.startswith("httpx2")] == ["httpx2<3,>=2.15.1"]
    extras = sorted(r for r in fields["Requires-Dist"] if "extra ==" in r)
    assert len(extras) == 5
    assert extras[0].startswith("aiohttp>=3.12.15")
    assert "extra == 'aiohttp'" in extras[0]
    assert extras[1].startswith("apprise>=2.0")
    assert "extra == 'alerts'" in extras[1]
    assert extras[2].startswith("mcp<3,>=2.1")
    assert "extra == 'mcp'" in extras[2]
    assert extras[3].startswith("opentelemetry-api>=1.28")
    assert "extra == 'otel'" in extras[3]
    assert extras[4].startswith("prometheus-client")
    assert "extra == 'exporter'" in extras[4]
    # Extras are for users only.
    assert fields["Provides-Extra"] == ["aiohttp", "alerts", "exporter", "mcp", "otel"]


def test_the_sdist_holds_the_licence_spec_and_tests(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for expected in ("LICENSE", "openapi.yaml", "generated/stability_user_client/py.typed"):
        assert expected in names
    assert any(n.startswith("spec/upstream/") for n in names)
    assert any(n.startswith("tests/cassettes/") for n in names)


def test_a_fresh_install_of_the_wheel_brings_httpx2_and_not_the_legacy_httpx(
    dist: Path, tmp_path: Path
) -> None:
    # What `pip install stability-user` gives a user: the wheel and its runtime dependencies,
    # from the package index, at the versions the project pins.
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "install", "--only-binary", ":all:", "-c", str(CONSTRAINTS), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import sys\n"
        "from importlib.metadata import distributions\n"
        "from stability_user import StabilityUser\n"
        "StabilityUser('sk-test-key')\n"
        "names = sorted({d.metadata['Name'].lower() for d in distributions()})\n"
        "print(' '.join(names))\n"
        "print(' '.join(sorted(m for m in ('httpx', 'httpcore', 'httpx2') if m in sys.modules)))"
    )
    result = subprocess.run(
        [python, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    installed, imported = result.stdout.splitlines()
    assert {"stability-user", "httpx2", "httpcore2", "attrs"} <= set(installed.split())
    assert not {"httpx", "httpcore"} & set(installed.split())
    assert imported == "httpx2"

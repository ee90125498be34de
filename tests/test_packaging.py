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
    assert sorted(r.split(">")[0].split("<")[0] for r in runtime) == ["attrs", "httpx", "sniffio"]
    (extra,) = [r for r in fields["Requires-Dist"] if "extra ==" in r]
    assert extra.startswith("prometheus-client")
    assert "extra == 'exporter'" in extra
    assert fields["Provides-Extra"] == ["exporter"]  # extras are for users only


def test_the_sdist_holds_the_licence_spec_and_tests(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for expected in ("LICENSE", "openapi.yaml", "generated/stability_user_client/py.typed"):
        assert expected in names
    assert any(n.startswith("spec/upstream/") for n in names)
    assert any(n.startswith("tests/cassettes/") for n in names)

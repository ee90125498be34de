"""The site's build is strict, and the API reference covers every public name.

Each failing build is of a copy of the project with one fault added, after a clean copy is
shown to build: the failure is the fault's, not the copy's.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What the site's build reads.
SOURCES = ["docs", "facade", "zensical.toml", "README.md", "CHANGELOG.md", "benchmarks"]


@pytest.fixture(scope="module")
def copy_of_the_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, root / name, ignore=shutil.ignore_patterns("__pycache__", "generated")
            )
        else:
            shutil.copy2(source, root / name)
    return root


def build(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "docs.py"), "build", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_clean_copy_builds(copy_of_the_project: Path) -> None:
    done = build(copy_of_the_project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (copy_of_the_project / "site" / "index.html").is_file()


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("A [broken link](no-such-page.md).", "page does not exist"),
        ("A [broken anchor](errors.md#no-such-heading).", "anchor"),
        ("A [reference][stability_user.NoSuchName] to no name.", "unresolved autoref"),
        ("::: stability_user.NoSuchName", "Could not collect"),
    ],
)
def test_a_broken_link_or_reference_fails_the_build(
    copy_of_the_project: Path, fault: str, said: str
) -> None:
    page = copy_of_the_project / "docs" / "configuration.md"
    original = page.read_text(encoding="utf-8")
    page.write_text(f"{original}\n{fault}\n", encoding="utf-8")
    try:
        done = build(copy_of_the_project)
    finally:
        page.write_text(original, encoding="utf-8")
    assert done.returncode != 0
    assert said in done.stdout + done.stderr


def test_a_warning_fails_the_build(copy_of_the_project: Path) -> None:
    # A docstring griffe cannot parse is only a warning to Zensical; the build fails on it.
    module = copy_of_the_project / "facade" / "stability_user" / "_models.py"
    original = module.read_text(encoding="utf-8")
    broken = original.replace(
        'class Balance:\n    """', 'class Balance:\n    """Args:\n        just words\n\n', 1
    )
    assert broken != original
    module.write_text(broken, encoding="utf-8")
    try:
        done = build(copy_of_the_project)
    finally:
        module.write_text(original, encoding="utf-8")
    assert done.returncode != 0
    assert "printed warnings" in done.stderr


@pytest.mark.parametrize(
    ("package", "page"),
    [
        ("stability_user", "stability_user"),
        ("stability_user.testing", "testing"),
        ("stability_user.monitoring", "monitoring"),
        ("stability_user.mcp", "mcp"),
        ("stability_user.prices", "prices"),
    ],
)
def test_every_public_name_has_its_reference_entry(site: Path, package: str, page: str) -> None:
    html = (site / "reference" / page / "index.html").read_text(encoding="utf-8")
    names = importlib.import_module(package).__all__
    missing = [
        name
        for name in names
        if f'id="{package}.{name}"' not in html and not (name == "__version__" and name in html)
    ]
    assert missing == []

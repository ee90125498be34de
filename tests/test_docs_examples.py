"""Every example of the README and the site runs, and every console block shows what the CLI prints.

Each ``python`` block runs in a fresh interpreter with ``STABILITY_API_KEY`` and
``STABILITY_BASE_URL`` pointing at the sample stand-in on loopback, as a reader who ran
``python -m stability_user.testing serve`` would have them. Each ``console`` block's commands run
in one shell, in order (so ``echo $?`` sees the command before it), and their output is compared
line by line with the block's; a ``…`` in a shown line stands for any text (a duration). Each
block has a fresh stand-in, so one that spends credits changes no other.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from stability_user.testing import SAMPLE_API_KEY, StandInAPI
from support.doc_blocks import ROOT, Block, blocks, commands, documents

ALL_BLOCKS = [block for path in documents() for block in blocks(path)]
PYTHON = [block for block in ALL_BLOCKS if block.language == "python"]
CONSOLE = [block for block in ALL_BLOCKS if block.language == "console"]
# Separates the commands' outputs in the shell's output; no command prints it.
MARK = "@@docs-test-command@@"


def _ids(block: Block) -> str:
    return block.where


@pytest.fixture
def sample_url() -> Iterator[str]:
    with StandInAPI.sample().serve() as server:
        yield server.url


@pytest.fixture
def reader_environment(sample_url: str, tmp_path: Path) -> dict[str, str]:
    """A reader's shell: the stand-in's variables exported, this environment's tools on PATH."""
    return {  # the autouse clean_environment fixture has removed any STABILITY_* already
        **os.environ,
        "STABILITY_API_KEY": SAMPLE_API_KEY,
        "STABILITY_BASE_URL": sample_url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",  # stdout and stderr interleave as on a terminal
        "NO_COLOR": "1",
        "HOME": str(tmp_path),
    }


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=50, check=False
    )


def _skip_marked(block: Block) -> None:
    if block.skip is not None:
        pytest.skip(f"{block.where}: {block.skip}")


@pytest.mark.parametrize("block", PYTHON, ids=_ids)
def test_python_block_runs(
    block: Block, reader_environment: dict[str, str], tmp_path: Path
) -> None:
    _skip_marked(block)
    done = _run([sys.executable, "-W", "error", "-c", block.text], reader_environment, tmp_path)
    assert done.returncode == 0, f"{block.where} failed:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("block", CONSOLE, ids=_ids)
def test_console_block_shows_the_real_output(
    block: Block, reader_environment: dict[str, str], tmp_path: Path
) -> None:
    _skip_marked(block)
    shown = commands(block)
    # The mark is printed between commands without losing the last one's status ($?).
    mark = f"status=$?; echo {MARK}; (exit $status)\n"
    script = "exec 2>&1\n" + "".join(f"{mark}{each.command}\n" for each in shown)
    done = _run(["bash", "-c", script], reader_environment, tmp_path)
    outputs = done.stdout.split(f"{MARK}\n")[1:]
    assert len(outputs) == len(shown), done.stdout
    for each, output in zip(shown, outputs, strict=True):
        lines = [line.rstrip() for line in output.splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        assert len(lines) == len(each.output), f"{block.where}: $ {each.command}\n{output}"
        for line, expected in zip(lines, each.output, strict=True):
            pattern = ".+".join(re.escape(part) for part in expected.split("…"))
            assert re.fullmatch(pattern, line), f"{block.where}: $ {each.command}\n{line}"


def test_every_block_of_a_runnable_language_is_found() -> None:
    # A block nested in a list, or a fence the parser misread, would silently go untested.
    for path in documents():
        text = path.read_text(encoding="utf-8")
        fences = len(re.findall(r"^\s*```(?:python|console)\s*$", text, re.MULTILINE))
        found = [b for b in blocks(path) if b.language in {"python", "console"}]
        assert len(found) == fences, path


def test_the_pages_have_examples_to_run() -> None:
    assert len(PYTHON) >= 15
    assert len(CONSOLE) >= 4
    with_python = {block.path.name for block in PYTHON}
    assert {"README.md", "getting-started.md", "errors.md", "testing.md"} <= with_python


def test_a_marked_block_is_skipped_with_its_reason() -> None:
    text = (
        "Live only:\n\n<!-- docs-test: skip needs the live API -->\n```python\nprint(1)\n```\n"
        "\n```python\nprint(2)\n```\n"
    )
    marked, plain = blocks(Path("README.md").resolve(), text)
    assert (marked.skip, marked.text) == ("needs the live API", "print(1)\n")
    assert (plain.skip, plain.line) == (None, 8)


def test_a_console_block_splits_into_commands_and_their_output() -> None:
    text = "```console\n$ one\nfirst\n\n$ two\n$ three\nthird\n```\n"
    (block,) = blocks(Path("README.md").resolve(), text)
    assert [(c.command, c.output) for c in commands(block)] == [
        ("one", ["first"]),
        ("two", []),
        ("three", ["third"]),
    ]


def test_the_readme_links_every_page_and_each_link_resolves() -> None:
    # The README is read on GitHub and PyPI, outside the site's build and its link checks.
    readme = ROOT / "README.md"
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme.read_text(encoding="utf-8"))
    local = {target for target in targets if "://" not in target}
    assert all((ROOT / target).is_file() for target in local), sorted(local)
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert pages - {"docs/changelog.md", "docs/index.md"} <= local


def _tree(text: str) -> dict[str, str | None]:
    """Each class of a drawn hierarchy (one per line, 4 columns a level) and its parent.

    The drawing is the lines from the one reading ``StabilityError`` to the next blank line.
    """
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "StabilityError")
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    parents: dict[str, str | None] = {}
    stack: list[str] = []
    for line in textwrap.dedent("\n".join(lines[start:end])).splitlines():
        match = re.match(r"^(?P<indent>(?:[│ ]   |[├└]── )*)(?P<name>[A-Z]\w+)", line)
        if match is None:
            continue
        depth = len(match["indent"]) // 4
        del stack[depth:]
        parents[match["name"]] = stack[-1] if stack else None
        stack.append(match["name"])
    return parents


def test_the_error_trees_are_the_real_hierarchy() -> None:
    # The Errors page and the exceptions module draw the tree; both must be the classes'.
    import stability_user
    from stability_user import _exceptions

    (page,) = [b for b in blocks(ROOT / "docs" / "errors.md") if b.language == "text"]
    drawn = {"docs/errors.md": page.text, "_exceptions.__doc__": _exceptions.__doc__ or ""}
    errors = {
        name
        for name in stability_user.__all__
        if isinstance(value := getattr(stability_user, name), type)
        and issubclass(value, stability_user.StabilityError)
    }
    for where, text in drawn.items():
        tree = _tree(text)
        assert set(tree) == errors, where
        for name, parent in tree.items():
            bases = getattr(stability_user, name).__bases__
            if parent is None:
                assert bases == (Exception,), name
            else:
                assert getattr(stability_user, parent) in bases, (where, name, parent)

"""The code blocks of the README and of every page in ``docs/``, for test_docs_examples.

A block is a top-level fenced block: a line opening with three backticks and a language, up to
the closing fence. A block the line before marks with ``<!-- docs-test: skip REASON -->`` (one
that needs the live API) is returned with that reason, to be skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = re.compile(r"^<!-- docs-test: skip (?P<reason>.+?) -->$")
FENCE = re.compile(r"^```(?P<language>[\w+-]*)\s*$")


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced block: where it is, its language, its text and why it is skipped, if it is."""

    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def documents() -> list[Path]:
    """The README and every Markdown page of the site."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path, text: str | None = None) -> list[Block]:
    """Every top-level fenced block of ``path`` (or of ``text``, read as that file)."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None or not opening["language"]:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"{path}:{index + 1}: a fence that is never closed")
        previous = lines[index - 1].strip() if index > 0 else ""
        marker = SKIP.match(previous)
        found.append(
            Block(
                path=path,
                line=index + 1,
                language=opening["language"],
                text="\n".join(lines[index + 1 : end]) + "\n",
                skip=marker["reason"] if marker else None,
            )
        )
        index = end + 1
    return found


@dataclass(frozen=True, slots=True)
class Command:
    """One ``$ command`` of a console block and the output shown after it."""

    command: str
    output: list[str]


def commands(block: Block) -> list[Command]:
    """A console block's commands, each with the lines it is shown to print."""
    found: list[Command] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            found.append(Command(line[2:], []))
        elif not found:
            raise ValueError(f"{block.where}: output before any '$ ' command")
        else:
            found[-1].output.append(line.rstrip())
    for command in found:
        while command.output and not command.output[-1]:
            command.output.pop()
    return found

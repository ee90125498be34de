"""`make docs` and `make docs-serve`: build (or serve) the site with Zensical, strictly.

Before Zensical runs, the Performance page's chart (matplotlib, SVG) and table are made from
``benchmarks/results.json``, so the page shows the last committed bench run, and the Prices
page's table from the price catalogue (``facade/stability_user/prices/catalogue.json``, which
``make generate`` writes from Stability's document): nothing is copied by hand. The build is
strict, and stricter than Zensical's ``--strict``: a line that griffe (the API reference's
parser) or Zensical prints as a warning fails it too.

``python scripts/docs.py build [--root DIR]`` builds DIR's site (default: this repository) into
DIR/site; ``serve`` serves it with live reload on http://127.0.0.1:8000.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path("benchmarks/results.json")
CHART = Path("docs/assets/generated/bench-ratios.svg")
TABLE = Path("build/docs/bench-table.md")
CATALOGUE = Path("facade/stability_user/prices/catalogue.json")
PRICES_TABLE = Path("build/docs/prices-table.md")
# What a warning looks like in Zensical's and griffe's output.
WARNING = re.compile(r"^(?:\x1b\[[0-9;]*m)*(?:Warning|WARNING|griffe:)", re.MULTILINE)


def _target_text(row: dict[str, Any]) -> str:
    target = row.get("target")
    return "" if target is None else f"≤ {target:.3g}"


def _outcome(name: str, row: dict[str, Any], missed: set[str]) -> str:
    """``ok``, ``missed`` (as the bench judged it), or nothing for a row without a target."""
    if row.get("target") is None:
        return ""
    return "**missed**" if name in missed else "ok"


def bench_table(results: dict[str, Any]) -> str:
    """The Performance page's table, in Markdown, from a bench run's results."""
    machine = results["machine"]
    lines = [
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['os']}, "
        f"Python {machine['python']}, httpx2 {machine['httpx2']}. Median (min-max) over "
        "interleaved rounds; ratio = ours / baseline (lower is better).",
        "",
        "| benchmark | stability-user | baseline | ratio | target | |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    missed = results["missed"]
    for name, row in results["summary"].items():
        lines.append(
            f"| {name} | {row['stability_user']} | {row['baseline']} | {row['ratio']:.3f}x "
            f"| {_target_text(row)} | {_outcome(name, row, set(missed))} |"
        )
    lines += ["", f"Targets missed in this run: {', '.join(missed)}." if missed else ""]
    return "\n".join(lines) + "\n"


def bench_chart(results: dict[str, Any], path: Path) -> None:
    """Each benchmark's ratio as a horizontal bar, its target as a tick, into an SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "stability-user"  # the same file for the same results
    rows = [(name, row) for name, row in results["summary"].items() if row["ratio"] > 0]
    names = [name for name, _ in rows][::-1]
    ratios = [row["ratio"] for _, row in rows][::-1]
    missed = set(results["missed"])
    colour = {"": "#9e9e9e", "ok": "#2e7d32", "**missed**": "#c62828"}
    colours = [colour[_outcome(name, row, missed)] for name, row in rows[::-1]]
    figure, axes = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.2))
    axes.barh(names, ratios, color=colours)
    for index, (_, row) in enumerate(rows[::-1]):
        if row.get("target") is not None:
            axes.plot([row["target"]] * 2, [index - 0.4, index + 0.4], color="black", lw=1.5)
    axes.axvline(1.0, color="#616161", lw=0.8, ls="--")
    axes.set_xscale("log")
    axes.set_xlabel("ratio, ours / baseline (log scale; lower is better; black tick: target)")
    axes.tick_params(axis="y", labelsize=8)
    axes.set_title("make bench: green met its target, red missed it, grey has none", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="svg", metadata={"Date": None})
    plt.close(figure)


def _credits_text(credits: float) -> str:
    return f"{credits:,.10f}".rstrip("0").rstrip(".")


def prices_table(catalogue: dict[str, Any]) -> str:
    """The Prices page's table, in Markdown, from the price catalogue: one row per priced
    endpoint and model, then the document it was read from."""
    lines = [
        "| service | endpoint | model | credits per successful result |",
        "| --- | --- | --- | --- |",
    ]
    for entry in catalogue["prices"]:
        formula = entry["formula"]
        credits = _credits_text(entry["credits"])
        if formula is not None:
            credits = (
                f"{formula['text']} ({credits} at {formula['default']} {formula['parameter']})"
            )
        lines.append(
            f"| `{entry['name']}` | `{entry['method']} {entry['path']}` "
            f"| {entry['model'] or ''} | {credits} |"
        )
    document = catalogue["document"]
    lines += [
        "",
        f"From `{document['file']}`, Stability's document published at <{document['url']}>, "
        f"copied {document['copied']} (SHA-256 `{document['sha256']}`).",
    ]
    return "\n".join(lines) + "\n"


def prepare(root: Path) -> None:
    """Make what the pages include from the bench results and the price catalogue."""
    results = json.loads((root / RESULTS).read_text(encoding="utf-8"))
    (root / TABLE).parent.mkdir(parents=True, exist_ok=True)
    (root / TABLE).write_text(bench_table(results), encoding="utf-8")
    bench_chart(results, root / CHART)
    catalogue = json.loads((root / CATALOGUE).read_text(encoding="utf-8"))
    (root / PRICES_TABLE).write_text(prices_table(catalogue), encoding="utf-8")


def zensical(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("zensical")), *args]


def build(root: Path) -> int:
    prepare(root)
    done = subprocess.run(
        zensical("build", "--strict", "--clean"),
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    output = done.stdout + done.stderr
    sys.stdout.write(output)
    if done.returncode != 0:
        print("docs: the build failed", file=sys.stderr)
        return 1
    if WARNING.search(output):
        print("docs: the build printed warnings; fix them", file=sys.stderr)
        return 1
    return 0


def serve(root: Path) -> int:
    prepare(root)
    return subprocess.run(zensical("serve"), cwd=root, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "serve"])
    parser.add_argument("--root", type=Path, default=ROOT, help="the project to build")
    args = parser.parse_args(argv)
    return build(args.root) if args.command == "build" else serve(args.root)


if __name__ == "__main__":
    sys.exit(main())

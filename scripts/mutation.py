"""`make mutation`: mutation testing of the hand-written core with mutmut.

mutmut 3 derives module names from paths and expects a ``src/`` layout, so this lays one out in a
work folder: ``src/stability_user`` (the facade, mutated), ``src/stability_user_client`` (the
generated client, not mutated) and the tests with what they read. It runs ``mutmut run`` there,
prints the score per module, and writes every surviving mutant to ``mutation/survivors.txt``,
marking those listed in ``mutation/equivalent.toml`` (judged equivalent, with the reason).

Usage: python scripts/mutation.py [--work DIR] [--keep] [MODULE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "mutation"
# The core: what decides behaviour, with no I/O of its own.
MODULES = [
    "_http._retry",
    "_http._flow",
    "_config",
    "_values",
    "_http._error_mapping",
    "_http._parsing",
    "_http._versions",
    "_http._ratelimit",
    "_http._pool",
]
TARGET = 0.95
# -x: a mutant is caught at its first failing test. Left out: building the package (it needs
# the real layout) and Schemathesis against the stand-in (a subprocess, which runs no mutant).
PYTEST_ARGS = [
    "-p",
    "no:cacheprovider",
    "-q",
    "-x",
    "--timeout=60",
    "--ignore=tests/test_packaging.py",
    "--ignore=tests/test_conformance.py",
]
# What the tests read besides themselves.
ALSO_COPY = [
    "tests",
    "openapi.yaml",
    "spec",
    "examples",
    "scripts",
    "docs",
    "README.md",
    "CHANGELOG.md",
]


def lay_out(work: Path, modules: list[str]) -> None:
    (work / "src").mkdir(parents=True)
    shutil.copytree(ROOT / "facade" / "stability_user", work / "src" / "stability_user")
    shutil.copytree(
        ROOT / "generated" / "stability_user_client", work / "src" / "stability_user_client"
    )
    for name in ALSO_COPY:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, work / name)
    pyproject = (ROOT / "pyproject.toml").read_text()
    only = ", ".join(f'"src/stability_user/{m.replace(".", "/")}.py"' for m in modules)
    pyproject += f"""
[tool.mutmut]
source_paths = ["src"]
only_mutate = [{only}]
also_copy = {json.dumps([*ALSO_COPY, "src/stability_user_client"])}
pytest_add_cli_args = {json.dumps(PYTEST_ARGS)}
pytest_add_cli_args_test_selection = ["tests"]
"""
    (work / "pyproject.toml").write_text(pyproject)


def mutant_states(work: Path) -> dict[str, str]:
    """Every mutant's name and state, from ``mutmut results --all``."""
    result = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    states = {}
    for line in result.stdout.splitlines():
        match = re.match(r"\s*([\w.]+__mutmut_\d+): (.+)$", line)
        if match:
            states[match.group(1)] = match.group(2).strip()
    return states


def module_of(mutant: str) -> str:
    # e.g. stability_user._http._retry.x_backoff_delay__mutmut_3 -> _http._retry
    return mutant.rpartition(".")[0].removeprefix("stability_user.")


def diff(work: Path, mutant: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "mutmut", "show", mutant],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    ).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("modules", nargs="*", default=MODULES)
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="stability-user-mutation-"))
    if work.exists() and any(work.iterdir()):
        shutil.rmtree(work)
    lay_out(work, args.modules)
    env = {**os.environ, "PYTHONPATH": str(work / "src")}
    print(f"==> mutmut run in {work} ({', '.join(args.modules)})", flush=True)
    subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(os.cpu_count() or 2)],
        cwd=work,
        env=env,
        check=False,
    )
    states = mutant_states(work)
    equivalent = tomllib.loads((HERE / "equivalent.toml").read_text()).get("mutants", {})
    totals: Counter[str] = Counter()
    killed: Counter[str] = Counter()
    judged: Counter[str] = Counter()
    lines = []
    for mutant, state in sorted(states.items()):
        module = module_of(mutant)
        totals[module] += 1
        if state in ("killed", "timeout", "segfault", "suspicious"):
            killed[module] += 1
            continue
        reason = equivalent.get(mutant)
        if reason and state == "survived":
            judged[module] += 1
        lines.append(f"## {mutant}: {state}" + (f" (equivalent: {reason})" if reason else ""))
        lines.append(diff(work, mutant).rstrip())
        lines.append("")
    (HERE / "survivors.txt").write_text("\n".join(lines) + "\n")
    print(f"\n{'module':<22}{'mutants':>8}{'killed':>8}{'equiv.':>8}{'other':>8}{'score':>8}")
    failing = []
    for module in args.modules:
        total = totals[f"{module}"] if module in totals else totals.get(module, 0)
        if not total:
            print(f"{module:<22}{0:>8}")
            continue
        other = total - killed[module] - judged[module]
        score = (killed[module] + judged[module]) / total
        print(
            f"{module:<22}{total:>8}{killed[module]:>8}{judged[module]:>8}{other:>8}{score:>8.1%}"
        )
        if score < TARGET:
            failing.append(module)
    print(f"\nSurvivors: {HERE / 'survivors.txt'}")
    if not args.keep and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    if failing:
        print(f"Below {TARGET:.0%}: {', '.join(failing)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

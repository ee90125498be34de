"""Imports run one way: no circle among ``stability_user``'s modules, counting imports inside
functions and leaving out those only under ``if TYPE_CHECKING:``."""

from __future__ import annotations

from pathlib import Path

import stability_user
from support.imports import circles, import_graph

PACKAGE = Path(stability_user.__file__).parent


def test_no_module_of_the_package_imports_itself_back() -> None:
    assert circles(import_graph(PACKAGE)) == []


def test_the_command_line_registers_its_commands_from_one_place() -> None:
    graph = import_graph(PACKAGE)
    parser = "stability_user._cli._parser"
    importers = {name for name, imported in graph.items() if parser in imported}
    assert importers <= {"stability_user._cli"}  # the commands take their options elsewhere
    commands = {
        "_account",
        "_balance",
        "_balances",
        "_status",
        "_measure",
        "_prices",
        "_estimate",
        "_exporter",
        "_mcp",
    }
    assert {f"stability_user._cli.{name}" for name in commands} <= graph[parser]


def test_a_circle_is_found_wherever_its_imports_stand(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def later():\n    from .sub import c\n")  # in a function
    (package / "sub" / "c.py").write_text("from .. import a\n")
    (package / "d.py").write_text(
        "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from . import e\nelse:\n    import os\n"
    )
    (package / "e.py").write_text("from .d import x\n")  # d imports e for type checking only
    graph = import_graph(package)
    assert graph["pkg.b"] == {"pkg.sub.c"}
    assert graph["pkg.d"] == set()
    assert circles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]


# The parts of the package, lowest first: a module imports only from its own part or lower ones.
# The shared modules every part uses sit at the bottom, the prices just above them (the client's
# require_credits() takes an estimate; the command line, the MCP server and the stand-in read
# them); the client (its settings and core, the module-level functions) above the wire, the
# caches and the history it builds on; the commands, exporters and servers at the top.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "shared",
        frozenset(
            {
                "_constants",
                "_credits",
                "_exceptions",
                "_files",
                "_job",
                "_logging",
                "_loopback",
                "_models",
                "_text",
                "_values",
                "_version",
            }
        ),
    ),
    ("prices", frozenset({"prices"})),
    ("status cache", frozenset({"_cache"})),
    ("history", frozenset({"history"})),
    ("wire", frozenset({"_http"})),
    (
        "client",
        frozenset({"", "_async_client", "_budget", "_client", "_config", "_core", "_default"}),
    ),
    ("alerts", frozenset({"_alerts"})),
    ("services", frozenset({"monitoring", "mcp", "testing"})),
    ("command line", frozenset({"_cli", "__main__"})),
)


def layer_of(module: str) -> int:
    top = module.removeprefix("stability_user").removeprefix(".").partition(".")[0]
    for rank, (_, members) in enumerate(LAYERS):
        if top in members:
            return rank
    raise AssertionError(f"{module} is in no part of the package: add it to LAYERS")


def test_no_part_imports_a_part_above_it() -> None:
    upward = sorted(
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {imported} "
        f"({LAYERS[layer_of(imported)][0]})"
        for module, imports in import_graph(PACKAGE).items()
        for imported in imports
        if layer_of(imported) > layer_of(module)
    )
    assert upward == []


def test_every_module_is_in_a_part_named_for_its_concern() -> None:
    # The top level holds only the shared modules and the client; the rest are packages.
    flat = {path.stem for path in PACKAGE.glob("*.py")}
    named = set().union(*(members for part, members in LAYERS if part in {"shared", "client"}))
    assert flat - {"__init__", "__main__"} <= named, flat - named

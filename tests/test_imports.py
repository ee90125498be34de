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
    commands = {"_account", "_balance", "_balances", "_status", "_measure", "_exporter", "_mcp"}
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

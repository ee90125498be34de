"""The HTTP stack is httpx2: nothing imports the legacy httpx or httpcore, and their objects
are refused with a message that says what to pass instead."""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import httpx
import httpx2
import pytest

from stability_user import AsyncStabilityUser, ConfigurationError, StabilityUser
from stability_user.testing import SAMPLE_API_KEY, StandInAPI

ROOT = Path(__file__).resolve().parent.parent
LEGACY = {"httpx", "httpcore"}
CLIENTS = [StabilityUser, AsyncStabilityUser]


def imported_packages(path: Path) -> set[str]:
    """The top-level packages ``path`` imports, wherever in the module the import stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.partition(".")[0])
    return found


@pytest.mark.parametrize("tree", ["facade", "generated"])
def test_no_module_imports_the_legacy_httpx_or_httpcore(tree: str) -> None:
    modules = sorted((ROOT / tree).rglob("*.py"))
    assert len(modules) > 10
    legacy = {str(m.relative_to(ROOT)): imported_packages(m) & LEGACY for m in modules}
    assert {name: found for name, found in legacy.items() if found} == {}
    assert any("httpx2" in imported_packages(m) for m in modules)


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.__name__)
def test_a_legacy_httpx_transport_is_refused_naming_httpx2(client: type) -> None:
    legacy = httpx.MockTransport(lambda request: httpx.Response(200))
    with pytest.raises(ConfigurationError) as caught:
        client(SAMPLE_API_KEY, transport=legacy)
    expected = "httpx2.BaseTransport" if client is StabilityUser else "httpx2.AsyncBaseTransport"
    assert str(caught.value) == (
        "transport is an httpx.MockTransport from the legacy httpx package; stability-user runs "
        "on httpx2 (the maintained continuation of httpx, same API) since 0.3.0: pass an "
        f"{expected} (import httpx2)."
    )


def test_a_subclass_of_a_legacy_transport_is_refused_too() -> None:
    class Mine(httpx.BaseTransport):
        pass

    with pytest.raises(ConfigurationError, match="from the legacy httpx package"):
        StabilityUser(SAMPLE_API_KEY, transport=Mine())


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.__name__)
def test_a_legacy_httpx_timeout_is_refused_naming_httpx2(client: type) -> None:
    with pytest.raises(ConfigurationError) as caught:
        client(SAMPLE_API_KEY, timeout=httpx.Timeout(5.0))
    assert str(caught.value) == (
        "timeout is an httpx.Timeout from the legacy httpx package; stability-user runs on "
        "httpx2 (the maintained continuation of httpx, same API) since 0.3.0: pass an "
        "httpx2.Timeout, or seconds."
    )


def test_a_legacy_timeout_for_one_call_is_refused_and_nothing_is_sent() -> None:
    api = StandInAPI.sample()
    with (
        StabilityUser(SAMPLE_API_KEY, transport=api.transport) as client,
        pytest.raises(ConfigurationError, match="legacy httpx package"),
    ):
        client.get_balance(timeout=httpx.Timeout(5.0))  # type: ignore[arg-type]
    assert api.requests == []


def test_an_async_only_transport_is_refused_by_the_sync_client() -> None:
    class AsyncOnly(httpx2.AsyncBaseTransport):
        pass

    with pytest.raises(ConfigurationError) as caught:
        StabilityUser(SAMPLE_API_KEY, transport=AsyncOnly())  # type: ignore[arg-type]
    assert str(caught.value) == "transport must be an httpx2.BaseTransport, not AsyncOnly."


def test_a_sync_only_transport_is_refused_by_the_async_client() -> None:
    with pytest.raises(ConfigurationError) as caught:
        AsyncStabilityUser(SAMPLE_API_KEY, transport=httpx2.HTTPTransport())  # type: ignore[arg-type]
    assert str(caught.value) == (
        "transport must be an httpx2.AsyncBaseTransport, not HTTPTransport."
    )


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.__name__)
def test_httpx2_transports_and_the_stand_in_are_accepted(client: type) -> None:
    client(SAMPLE_API_KEY, transport=StandInAPI.sample().transport)
    client(SAMPLE_API_KEY, transport=httpx2.MockTransport(lambda request: httpx2.Response(200)))


def load_hook() -> ModuleType:
    path = ROOT / "tools" / "generator-hooks" / "use-httpx2"
    loader = importlib.machinery.SourceFileLoader("use_httpx2", str(path))
    spec = importlib.util.spec_from_loader("use_httpx2", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_generator_hook_changes_only_the_import_line(tmp_path: Path) -> None:
    hook = load_hook()
    source = 'import httpx\n\n\ndef f() -> httpx.Client:\n    """Uses httpx."""\n'
    (tmp_path / "a.py").write_text(source)
    assert hook.main(["use-httpx2", str(tmp_path)]) == 0
    assert (tmp_path / "a.py").read_text() == source.replace(
        "import httpx\n", "import httpx2 as httpx\n", 1
    )


@pytest.mark.parametrize(
    "line", ["from httpx import Client", "import httpcore", "import httpx.transports"]
)
def test_the_generator_hook_fails_on_an_import_it_does_not_know(
    tmp_path: Path, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "b.py").write_text(f"{line}\n")
    assert load_hook().main(["use-httpx2", str(tmp_path)]) == 1
    assert line in capsys.readouterr().out

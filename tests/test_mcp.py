"""``stability-user mcp``: driven by the MCP SDK's own client, over stdio (the real command, its
stdout copied byte for byte) and over streamable HTTP, against the stand-in."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from stability_user.testing import StandInAPI, StandInOrganization, StandInServer
from support.blackhole import BlackHole
from support.fault_server import FaultServer, Reply, Reset

KEY = "sk-mcptest-0123456789abcdefghijklmnopqrstuvwx"
TOOLS = {
    "get_balance",
    "get_balances",
    "get_account",
    "check_credits",
    "list_prices",
    "estimate_cost",
}


@pytest.fixture
def api() -> StandInAPI:
    api = StandInAPI()
    api.add_account(
        KEY,
        id="user-mcp-1",
        email="grace@example.com",
        profile_picture="https://example.com/grace.png",
        organizations=[
            StandInOrganization("org-main", "Main", "OWNER", True, 1072.5),
            StandInOrganization("org-side", "Side", "MEMBER", False, 3.25),
        ],
    )
    return api


@pytest.fixture
def server(api: StandInAPI) -> Iterator[StandInServer]:
    with api.serve() as served:
        yield served


def command() -> str:
    return str(Path(sys.executable).parent / "stability-user")


def child_environment(url: str) -> dict[str, str]:
    """What an MCP client's configuration gives the server: the key and the base URL (and
    coverage's variables, so the server process is measured too)."""
    passed = {k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}
    return {**passed, "STABILITY_API_KEY": KEY, "STABILITY_BASE_URL": url}


class Recorded:
    """``stability-user mcp`` over stdio, its stdout copied to ``raw`` and stderr to ``log``."""

    def __init__(
        self, folder: Path, url: str, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.raw = folder / "stdout.raw"
        self.log = folder / "stderr.log"
        line = " ".join(shlex.quote(a) for a in (command(), "mcp", *args))
        self.params = StdioServerParameters(
            command="sh",
            args=[
                "-c",
                f"{line} 2> {shlex.quote(str(self.log))} | tee {shlex.quote(str(self.raw))}",
            ],
            env={**child_environment(url), **(env or {})},
        )

    def run(self, scenario: Callable[[Client], Awaitable[None]]) -> None:
        async def main() -> None:
            async with Client(self.params, read_timeout_seconds=30) as client:
                await scenario(client)

        asyncio.run(main())

    def check_the_wire(self) -> None:
        """Every byte the server wrote to stdout is JSON-RPC; the key is in none of its output."""
        raw = self.raw.read_bytes()
        assert raw, "the server wrote nothing"
        for line in raw.decode().splitlines():
            message = json.loads(line)
            assert message["jsonrpc"] == "2.0", line
        assert KEY.encode() not in raw
        assert KEY[3:20].encode() not in raw
        assert KEY.encode() not in self.log.read_bytes()


async def call(client: Client, tool: str, **arguments: Any) -> tuple[bool, Any]:
    """(is_error, structured content or the error's text) of one call."""
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        (block,) = result.content
        return True, block.text  # type: ignore[union-attr]
    return False, result.structured_content


def test_the_tools_over_stdio(tmp_path: Path, server: StandInServer, api: StandInAPI) -> None:
    recorded = Recorded(tmp_path, server.url)

    async def scenario(client: Client) -> None:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(listed) == TOOLS
        for tool in listed.values():
            hints = tool.annotations
            assert hints is not None
            assert (hints.read_only_hint, hints.destructive_hint) == (True, False)
            # Every tool asks Stability's API but list_prices, which reads the catalogue alone.
            open_world = tool.name != "list_prices"
            assert (hints.idempotent_hint, hints.open_world_hint) == (True, open_world)
            assert tool.output_schema is not None
            assert tool.output_schema["type"] == "object"
            assert "Free to call" in (tool.description or "")
            assert "spends no credits" in (tool.description or "")
        assert listed["check_credits"].input_schema["required"] == ["minimum"]
        assert listed["check_credits"].input_schema["properties"]["minimum"]["type"] == "number"
        account_schema = listed["get_account"].output_schema
        assert account_schema is not None
        assert set(account_schema["properties"]) == {"id", "organizations"}

        assert await call(client, "get_balance") == (
            False,
            {"organization": None, "credits": 1072.5},
        )
        assert await call(client, "get_balance", organization="org-side") == (
            False,
            {"organization": "org-side", "credits": 3.25},
        )
        error, balances = await call(client, "get_balances")
        assert not error
        assert balances["total_credits"] == 1075.75
        assert [(o["id"], o["credits"], o["error"]) for o in balances["organizations"]] == [
            ("org-main", 1072.5, None),
            ("org-side", 3.25, None),
        ]
        assert await call(client, "get_account") == (
            False,
            {
                "id": "user-mcp-1",
                "organizations": [
                    {"id": "org-main", "name": "Main", "role": "OWNER", "is_default": True},
                    {"id": "org-side", "name": "Side", "role": "MEMBER", "is_default": False},
                ],
            },
        )
        assert await call(client, "check_credits", minimum=10, organization="org-side") == (
            False,
            {"enough": False, "required": 10.0, "available": 3.25, "organization": "org-side"},
        )
        assert await call(client, "check_credits", minimum=1000) == (
            False,
            {"enough": True, "required": 1000.0, "available": 1072.5, "organization": None},
        )

        # Each failure is an error result with the command line's one line, and the next
        # call works.
        failures: list[tuple[Callable[[], object], str, dict[str, Any], str]] = [
            (
                lambda: api.inject_error(
                    401, message="Incorrect API key provided: sk-mcpt****uvwx."
                ),
                "get_balance",
                {},
                "AuthenticationError (HTTP 401): Incorrect API key provided: sk-mcpt****uvwx.",
            ),
            (
                # A Retry-After the tool's 30 s can wait out twice (a longer one is honoured
                # up to 60 s, past the tool's budget).
                lambda: api.inject_error(
                    429, times=3, message="Slow down.", headers={"Retry-After": "1"}
                ),
                "get_balances",
                {},
                "RateLimitError (HTTP 429): Slow down. Retry after 1 s.",
            ),
            (
                lambda: None,
                "get_balance",
                {"organization": "org-elsewhere"},
                "PermissionDeniedError (HTTP 403): You do not have access to organization "
                "org-elsewhere.",
            ),
            (
                lambda: None,
                "check_credits",
                {"minimum": "ten"},
                "ConfigurationError: minimum must be a number of credits, not str.",
            ),
            (
                lambda: None,
                "check_credits",
                {"minimum": -5},
                "ConfigurationError: minimum must be a finite number >= 0, not -5.",
            ),
            (
                lambda: None,
                "get_balance",
                {"organization": 7},
                "ConfigurationError: organization must be a str, not int.",
            ),
            (
                lambda: None,
                "check_credits",
                {},
                "Error executing tool check_credits: 1 validation error for "
                "check_creditsArguments minimum Field required [type=missing, input_value={}, "
                "input_type=dict]",
            ),
        ]
        for arrange, tool, arguments, message in failures:
            arrange()
            assert await call(client, tool, **arguments) == (True, message), tool
            error, _ = await call(client, "get_balance")
            assert not error, f"the call after {message!r}"

    recorded.run(scenario)
    recorded.check_the_wire()


def test_prices_and_the_cost_of_a_plan_over_stdio(
    tmp_path: Path, server: StandInServer, api: StandInAPI
) -> None:
    recorded = Recorded(tmp_path, server.url)
    digest = json.loads((Path(__file__).parent.parent / "spec/upstream/sources.json").read_text())[
        "stability-v2beta.openapi.json"
    ]["sha256"]

    async def scenario(client: Client) -> None:
        error, listed = await call(client, "list_prices")
        assert not error
        found = {(p["name"], p["path"]): p for p in listed["prices"]}
        assert len(found) == 30
        ultra = found["ultra", "/v2beta/stable-image/generate/ultra"]
        assert (ultra["credits"], ultra["overridden"]) == (8.0, False)
        assert ultra["stated"] == "The Ultra service uses 8 credits per successful result."
        audio = found["stable-audio-2", "/v2beta/audio/stable-audio-2/text-to-audio"]
        assert (audio["credits"], audio["formula"], audio["parameter"], audio["default"]) == (
            20.0,
            "17 + 0.06 * steps",
            "steps",
            50,
        )
        assert listed["document"] == {
            "url": "https://api.stability.ai/v2alpha/openapi",
            "copied": "2026-12-07",
            "sha256": digest,
        }
        assert listed["overrides"] is None
        error, sd3 = await call(client, "list_prices", names=["/v2beta/stable-image/generate/sd3"])
        assert not error
        assert [(p["model"], p["credits"]) for p in sd3["prices"]] == [
            ("sd3.5-large", 6.5),
            ("sd3.5-large-turbo", 4.0),
            ("sd3.5-medium", 3.5),
            ("sd3.5-flash", 2.5),
        ]

        error, plan = await call(client, "estimate_cost", plan={"ultra": 100, "core": 20})
        assert not error
        assert plan == {
            "plan": "100 ultra + 20 core",
            "total": 860.0,
            "lines": [
                {
                    "name": "ultra",
                    "count": 100,
                    "credits_each": 8.0,
                    "credits": 800.0,
                    "method": "POST",
                    "path": "/v2beta/stable-image/generate/ultra",
                    "model": None,
                    "parameter_value": None,
                    "overridden": False,
                },
                {
                    "name": "core",
                    "count": 20,
                    "credits_each": 3.0,
                    "credits": 60.0,
                    "method": "POST",
                    "path": "/v2beta/stable-image/generate/core",
                    "model": None,
                    "parameter_value": None,
                    "overridden": False,
                },
            ],
            "organization": None,
            "balance": 1072.5,
            "left": 212.5,
            "enough": True,
            "overrides": None,
        }
        error, short = await call(
            client, "estimate_cost", plan={"sd3.5-large": 1}, organization="org-side"
        )
        assert not error
        assert (short["balance"], short["total"], short["left"], short["enough"]) == (
            3.25,
            6.5,
            -3.25,
            False,
        )
        assert short["organization"] == "org-side"
        # list_prices asked nothing of the API; each estimate read one balance.
        assert [request.organization for request in api.requests] == [None, "org-side"]

        failures: list[tuple[str, dict[str, Any], str]] = [
            (
                "list_prices",
                {"names": "ultra"},
                "ConfigurationError: names must be a list of service names.",
            ),
            (
                "list_prices",
                {"names": ["ultr"]},
                "ConfigurationError: Unknown service 'ultr': did you mean ultra?",
            ),
            (
                "estimate_cost",
                {"plan": {"ultr": 3}},
                "ConfigurationError: Unknown service 'ultr': did you mean ultra?",
            ),
            (
                "estimate_cost",
                {"plan": {"ultra": -1}},
                "ConfigurationError: The count of ultra must be a whole number from 0 to "
                "1,000,000,000, not -1.",
            ),
            (
                "estimate_cost",
                {"plan": {"ultra": 2.5}},
                "ConfigurationError: The count of ultra must be a whole number from 0 to "
                "1,000,000,000, not 2.5.",
            ),
            (
                "estimate_cost",
                {"plan": "100 ultra"},
                "ConfigurationError: plan must be an object of service names to counts, such as "
                '{"ultra": 100}.',
            ),
            (
                "estimate_cost",
                {"plan": {}},
                "ConfigurationError: A plan names at least one service.",
            ),
            (
                "estimate_cost",
                {"plan": {"core": 1}, "organization": "org-elsewhere"},
                "PermissionDeniedError (HTTP 403): You do not have access to organization "
                "org-elsewhere.",
            ),
        ]
        before = len(api.requests)
        for tool, arguments, message in failures:
            assert await call(client, tool, **arguments) == (True, message), arguments
        # Only the last one got as far as the API: a bad plan sends nothing.
        assert len(api.requests) == before + 1

    recorded.run(scenario)
    recorded.check_the_wire()


def test_your_own_prices_are_said_to_be_yours(tmp_path: Path, server: StandInServer) -> None:
    rates = tmp_path / "prices.toml"
    rates.write_text("[prices]\nultra = 7.5\n")
    recorded = Recorded(tmp_path, server.url, env={"STABILITY_PRICES": str(rates)})

    async def scenario(client: Client) -> None:
        error, listed = await call(client, "list_prices", names=["ultra", "core"])
        assert not error
        assert [(p["name"], p["credits"], p["overridden"]) for p in listed["prices"]] == [
            ("ultra", 7.5, True),
            ("core", 3.0, False),
        ]
        assert listed["overrides"] == str(rates)
        error, plan = await call(client, "estimate_cost", plan={"ultra": 10})
        assert not error
        assert (plan["total"], plan["overrides"], plan["lines"][0]["overridden"]) == (
            75.0,
            str(rates),
            True,
        )

    recorded.run(scenario)
    recorded.check_the_wire()


def test_a_network_failure_is_an_error_result(tmp_path: Path, faults: FaultServer) -> None:
    faults.script(Reset(), Reset(), Reset())  # the first call and both its retries
    faults.always(Reply(200, b'{"credits": 5.5}', headers={"Content-Type": "application/json"}))
    recorded = Recorded(tmp_path, faults.url)

    async def scenario(client: Client) -> None:
        error, text = await call(client, "get_balance")
        assert error
        assert text.startswith("APIConnectionError: ")
        assert "\n" not in text
        assert await call(client, "get_balance") == (False, {"organization": None, "credits": 5.5})

    recorded.run(scenario)
    recorded.check_the_wire()


def test_the_email_only_when_the_operator_shares_it(tmp_path: Path, server: StandInServer) -> None:
    recorded = Recorded(tmp_path, server.url, "--share-email")

    async def scenario(client: Client) -> None:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        account_schema = listed["get_account"].output_schema
        assert account_schema is not None
        assert set(account_schema["properties"]) == {
            "id",
            "organizations",
            "email",
            "profile_picture",
        }
        error, account = await call(client, "get_account")
        assert not error
        assert account["email"] == "grace@example.com"
        assert account["profile_picture"] == "https://example.com/grace.png"

    recorded.run(scenario)


def served_over_http(url: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [command(), "mcp", "--transport", "http", "--port", "0", *args],
        env={**os.environ, **child_environment(url)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    assert line.startswith("Serving MCP (streamable HTTP) at http://127.0.0.1:"), line
    return process, line.split()[-1]


def test_the_tools_over_streamable_http(server: StandInServer) -> None:
    import httpx2

    process, url = served_over_http(server.url)
    try:

        async def main() -> None:
            async with Client(url, read_timeout_seconds=30) as client:
                assert {t.name for t in (await client.list_tools()).tools} == TOOLS
                assert await call(client, "check_credits", minimum=2) == (
                    False,
                    {"enough": True, "required": 2.0, "available": 1072.5, "organization": None},
                )

        asyncio.run(main())
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "probe", "version": "1"},
            },
        }
        headers = {"Accept": "application/json, text/event-stream"}
        foreign_host = httpx2.post(
            url, json=initialize, headers={**headers, "Host": "evil.example"}
        )
        assert foreign_host.status_code == 421
        foreign_origin = httpx2.post(
            url, json=initialize, headers={**headers, "Origin": "http://evil.example"}
        )
        assert foreign_origin.status_code == 403
        assert httpx2.post(url, json=initialize, headers=headers).status_code == 200
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert out == ""
    assert KEY not in err


def finished(
    argv: list[str], env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, input=stdin, capture_output=True, text=True, timeout=50, check=False
    )


def test_only_loopback_is_served(server: StandInServer) -> None:
    done = finished(
        [command(), "mcp", "--transport", "http", "--host", "0.0.0.0"],
        {**os.environ, **child_environment(server.url)},
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "stability-user: error: refusing to serve on '0.0.0.0': the server spends your API key "
        "for whoever reaches it, so it listens on 127.0.0.1 only\n"
    )


def test_a_missing_key_is_exit_2_before_anything_is_served() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "STABILITY_API_KEY"}
    done = finished(
        [command(), "mcp"], environment, stdin='{"jsonrpc": "2.0", "id": 1, "method": "ping"}\n'
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "stability-user: error: STABILITY_API_KEY is not set: set it to your Stability API key.\n"
    )


def test_without_the_sdk_it_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['mcp'] = None\n"
        "from stability_user._cli import main\n"
        "sys.exit(main(['mcp']))"
    )
    done = finished([sys.executable, "-c", code], {**os.environ, "STABILITY_API_KEY": KEY})
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "stability-user: error: the MCP server needs the MCP SDK: "
        "pip install 'stability-user[mcp]'\n"
    )


# -- the configuration snippets of "Agents (MCP)" -------------------------------------------------


def page_blocks(language: str) -> list[str]:
    from support.doc_blocks import ROOT, blocks

    return [b.text for b in blocks(ROOT / "docs" / "mcp.md") if b.language == language]


def started(params: StdioServerParameters) -> set[str]:
    async def main() -> set[str]:
        async with Client(params, read_timeout_seconds=30) as client:
            return {tool.name for tool in (await client.list_tools()).tools}

    return asyncio.run(main())


def with_the_stand_in(env: dict[str, str], url: str) -> dict[str, str]:
    """The snippet's environment, its placeholder key replaced by the stand-in's, its URL added."""
    assert env["STABILITY_API_KEY"] == "sk-your-key"
    return {**env, **child_environment(url), "PATH": str(Path(sys.executable).parent)}


def test_the_mcp_servers_entry_starts_the_server(server: StandInServer) -> None:
    (snippet,) = page_blocks("json")
    entry = json.loads(snippet)["mcpServers"]["stability-credits"]
    params = StdioServerParameters(
        command=entry["command"],
        args=entry["args"],
        env=with_the_stand_in(entry["env"], server.url),
    )
    assert started(params) == TOOLS


def test_the_command_line_starts_the_server(server: StandInServer) -> None:
    (line,) = [text for text in page_blocks("sh") if text.startswith("claude mcp add")]
    words = shlex.split(line)
    options, server_command = words[: words.index("--")], words[words.index("--") + 1 :]
    env = dict(option.split("=", 1) for option in options[options.index("--env") + 1 :][:1])
    params = StdioServerParameters(
        command=server_command[0],
        args=server_command[1:],
        env=with_the_stand_in(env, server.url),
    )
    assert started(params) == TOOLS


def test_serving_http_in_process_ends_cleanly_when_cancelled(server: StandInServer) -> None:
    import socket

    import anyio

    from stability_user import AsyncStabilityUser
    from stability_user.mcp import serve_http

    async def main() -> str:
        client = AsyncStabilityUser(KEY, base_url=server.url)
        urls: list[str] = []
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: serve_http(client, port=0, ready=urls.append))
            with anyio.fail_after(30):
                while not urls:
                    await anyio.sleep(0.01)
            async with Client(urls[0], read_timeout_seconds=30) as mcp_client:
                assert await call(mcp_client, "get_balance", organization="org-side") == (
                    False,
                    {"organization": "org-side", "credits": 3.25},
                )
            group.cancel_scope.cancel()
        assert client.is_closed
        return urls[0]

    url = asyncio.run(main())
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))  # the listening socket is closed


def test_the_server_uses_the_public_api_only() -> None:
    # stability_user.mcp reads as an example of the SDK in use: whatever it takes from the
    # package comes through `from .. import NAME`, NAME one of stability_user.__all__, or from
    # a public module, `from ..prices import NAME`, NAME one of its __all__.
    import ast
    import importlib

    import stability_user

    folder = Path(stability_user.__file__).parent / "mcp"
    public = {"prices"}
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                names = {alias.name for alias in node.names}
                if node.module is None:
                    assert names <= set(stability_user.__all__), (path.name, names)
                    continue
                assert node.module in public, f"{path.name}: from ..{node.module} import ..."
                module = importlib.import_module(f"stability_user.{node.module}")
                assert names <= set(module.__all__), (path.name, node.module, names)
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert not (node.module or "").startswith("stability_user"), path.name


# -- bounds: a hanging API, a minimum beyond any float, totals --------------------------------


def test_a_tool_call_answers_within_its_timeout_whatever_the_api_does() -> None:
    from stability_user import AsyncStabilityUser
    from stability_user.mcp import build_server

    hole = BlackHole()  # connects never complete: the client alone would try 3 x 5 s

    async def main() -> list[tuple[bool, Any]]:
        async with AsyncStabilityUser(KEY, base_url=hole.url) as client:
            server = build_server(client, tool_timeout=0.5)
            async with Client(server, read_timeout_seconds=30) as mcp_client:
                return [
                    await call(mcp_client, tool, **arguments)
                    for tool, arguments in (
                        ("get_balance", {}),
                        ("get_balances", {}),
                        ("get_account", {}),
                        ("check_credits", {"minimum": 1}),
                        ("estimate_cost", {"plan": {"core": 10}}),
                    )
                ]

    try:
        outcomes = asyncio.run(main())
    finally:
        hole.close()
    expected = "APITimeoutError: No answer from the API within 0.5 s (the tool call's timeout)."
    assert outcomes == [(True, expected)] * 5


def test_the_tool_timeout_defaults_under_what_mcp_clients_allow() -> None:
    from stability_user._cli._parser import build_parser
    from stability_user._constants import MCP_TOOL_TIMEOUT
    from stability_user.mcp import TOOL_TIMEOUT

    assert TOOL_TIMEOUT == MCP_TOOL_TIMEOUT == 30.0
    assert build_parser().parse_args(["mcp"]).timeout == TOOL_TIMEOUT


def test_the_command_bounds_a_tool_call_by_its_timeout(tmp_path: Path) -> None:
    hole = BlackHole()
    recorded = Recorded(tmp_path, hole.url, "--timeout", "1.5")

    async def scenario(client: Client) -> None:
        assert await call(client, "get_balance") == (
            True,
            "APITimeoutError: No answer from the API within 1.5 s (the tool call's timeout).",
        )

    try:
        recorded.run(scenario)
    finally:
        hole.close()
    recorded.check_the_wire()


def test_a_minimum_beyond_any_float_is_a_one_line_error(
    tmp_path: Path, server: StandInServer
) -> None:
    recorded = Recorded(tmp_path, server.url)

    async def scenario(client: Client) -> None:
        assert await call(client, "check_credits", minimum=10**400) == (
            True,
            "ConfigurationError: minimum must be a finite number >= 0, not an integer too "
            "large for a float.",
        )

    recorded.run(scenario)
    recorded.check_the_wire()
    assert "Traceback" not in recorded.log.read_text()


def test_the_total_adds_up_as_a_person_adds_it(tmp_path: Path) -> None:
    api = StandInAPI()
    api.add_account(
        KEY,
        email="grace@example.com",
        organizations=[
            StandInOrganization("org-a", "A", "OWNER", True, 0.1),
            StandInOrganization("org-b", "B", "MEMBER", False, 0.2),
            StandInOrganization("org-c", "C", "MEMBER", False, 0),
        ],
    )
    with api.serve() as served:
        recorded = Recorded(tmp_path, served.url)

        async def scenario(client: Client) -> None:
            error, balances = await call(client, "get_balances")
            assert not error
            assert balances["total_credits"] == 0.3  # not 0.30000000000000004
            assert [o["credits"] for o in balances["organizations"]] == [0.1, 0.2, 0.0]

        recorded.run(scenario)


def test_the_url_is_announced_only_once_connections_are_accepted(server: StandInServer) -> None:
    import socket

    import anyio

    from stability_user import AsyncStabilityUser
    from stability_user.mcp import serve_http

    connected: list[bool] = []

    def ready(url: str) -> None:
        # A client that connects the moment it reads the URL: queued, never refused.
        port = int(url.rsplit(":", 1)[1].split("/", maxsplit=1)[0])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except OSError:
            connected.append(False)
        else:
            connected.append(True)

    async def main() -> None:
        client = AsyncStabilityUser(KEY, base_url=server.url)
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: serve_http(client, port=0, ready=ready))
            with anyio.fail_after(30):
                while not connected:
                    await anyio.sleep(0.01)
            group.cancel_scope.cancel()

    asyncio.run(main())
    assert connected == [True]

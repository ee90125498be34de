"""The stability-user command: every command, flag and exit status, through the real entry point."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import stability_user
from stability_user._cli import main
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, standin_server: StandInServer) -> StandInServer:
    monkeypatch.setenv("STABILITY_API_KEY", SAMPLE_API_KEY)
    monkeypatch.setenv("STABILITY_BASE_URL", standin_server.url)
    return standin_server


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's own exits: --help, --version, usage errors
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_account_table(env: StandInServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "account")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "Account  user-standin-0001"
    assert lines[1] == "Email    ada@example.com"
    assert lines[4].split() == ["ORGANIZATION", "NAME", "ROLE", "DEFAULT"]
    assert lines[5].split() == ["org-standin-personal", "Ada's", "studio", "OWNER", "yes"]
    assert lines[6].split() == ["org-standin-lumen", "Lumen", "Games", "MEMBER"]
    assert "\033[" not in out


def test_account_json(env: StandInServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "account", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["email"] == "ada@example.com"
    assert data["organizations"][0]["id"] == "org-standin-personal"


def test_balance(env: StandInServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "balance") == (0, "125.50 credits (default organization)\n", "")
    assert run(capsys, "balance", "--org", "org-standin-lab") == (
        0,
        "3.25 credits (organization org-standin-lab)\n",
        "",
    )
    code, out, _ = run(capsys, "balance", "--org", "org-standin-lumen", "--json")
    assert (code, json.loads(out)) == (0, {"organization": "org-standin-lumen", "credits": 42.0})
    code, out, _ = run(capsys, "balance", "--json")
    assert (code, json.loads(out)) == (0, {"organization": None, "credits": 125.5})


def test_balance_uses_stability_organization(
    env: StandInServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STABILITY_ORGANIZATION", "org-standin-lab")
    assert run(capsys, "balance")[1] == "3.25 credits (organization org-standin-lab)\n"


def test_balances(env: StandInServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "balances")
    assert (code, err) == (0, "")
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["ORGANIZATION", "NAME", "ROLE", "CREDITS"]
    assert rows[1] == ["org-standin-personal", "*", "Ada's", "studio", "OWNER", "125.50"]
    assert rows[3][-1] == "3.25"
    assert rows[-1] == ["*", "default", "organization"]
    code, out, _ = run(capsys, "balances", "--json")
    assert json.loads(out) == [
        {"id": "org-standin-personal", "name": "Ada's studio", "credits": 125.5},
        {"id": "org-standin-lumen", "name": "Lumen Games", "credits": 42.0},
        {"id": "org-standin-lab", "name": "Research Lab", "credits": 3.25},
    ]


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["balance", "--min-credits", "100"], 0),
        (["balance", "--min-credits", "200"], 3),
        (["balance", "--org", "org-standin-lab", "--min-credits", "3.25"], 0),
        (["balance", "--org", "org-standin-lab", "--min-credits", "3.26"], 3),
        (["balances", "--min-credits", "3"], 0),
        (["balances", "--min-credits", "50"], 3),
        (["balances", "--min-credits", "50", "--json"], 3),
    ],
)
def test_min_credits(
    env: StandInServer, capsys: pytest.CaptureFixture[str], argv: list[str], code: int
) -> None:
    got, out, err = run(capsys, *argv)
    assert got == code
    assert out  # the balance is printed either way
    if code == 3:
        assert "below --min-credits" in err
    else:
        assert err == ""


def test_balances_names_the_low_organizations(
    env: StandInServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, err = run(capsys, "balances", "--min-credits", "50")
    assert "org-standin-lumen (42.00)" in err
    assert "org-standin-lab (3.25)" in err
    assert "org-standin-personal" not in err


def test_balances_with_a_failing_organization_exits_1_and_keeps_the_rest(
    env: StandInServer,
    standin: StandInAPI,
    capsys: pytest.CaptureFixture[str],
    waits: list[float],
) -> None:
    standin.inject_error(403, organization="org-standin-lab", times=None, message="no access")
    code, out, err = run(capsys, "balances", "--min-credits", "1")
    assert code == 1
    assert "125.50" in out
    assert "error" in out.splitlines()[3]
    assert err.strip() == (
        "stability-user: org-standin-lab: PermissionDeniedError (HTTP 403): no access"
    )
    code, out, _ = run(capsys, "balances", "--json")
    assert json.loads(out)[2]["credits"] is None
    assert json.loads(out)[2]["error"].startswith("PermissionDeniedError")


def test_api_failure_is_one_line_and_exit_1(
    env: StandInServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STABILITY_API_KEY", "wrong-key")
    code, out, err = run(capsys, "account")
    assert (code, out) == (1, "")
    assert err == (
        "stability-user: error: AuthenticationError (HTTP 401): Incorrect API key provided: "
        "*********. You can find your API key at https://stability.ai.\n"
    )


def test_network_failure_is_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, waits: list[float]
) -> None:
    from support.fault_server import unused_port_url

    monkeypatch.setenv("STABILITY_API_KEY", "k")
    code, _, err = run(capsys, "balance", "--base-url", unused_port_url(), "--timeout", "2")
    assert code == 1
    assert err.startswith(
        "stability-user: error: APIConnectionError: Connection error (ConnectError"
    )
    assert len(err.splitlines()) == 1


def test_missing_key_is_exit_2_naming_the_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "balance")
    assert (code, out) == (2, "")
    assert "STABILITY_API_KEY" in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["balance", "--min-credits", "lots"],
        ["balance", "--timeout", "soon"],
        ["account", "--api-key", "sk-123"],
    ],
)
def test_usage_errors_are_exit_2(
    env: StandInServer, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert "usage:" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["balance", "--timeout", "-1"],
            "argument --timeout: must be a positive number of seconds up to 86400 (a day), "
            "not '-1'",
        ),
        (["balance", "--timeout", "nan"], "up to 86400 (a day), not 'nan'"),
        # Beyond a day: a usage error, not an OverflowError's traceback at the first request.
        (["balance", "--timeout", "1e300"], "up to 86400 (a day), not '1e300'"),
        (["measure", "--timeout", "1e10", "--", "true"], "up to 86400 (a day), not '1e10'"),
        (["status", "--timeout", "1e10", "--max-age", "0"], "up to 86400 (a day), not '1e10'"),
        (["exporter", "--interval", "inf"], "up to 86400 (a day), not 'inf'"),
        (
            ["exporter", "--interval", "0.5"],
            "argument --interval: must be at least 1 s between refreshes (each one spends API "
            "requests, of Stability's 150 per 10 s), not '0.5'",
        ),
        (["mcp", "--timeout", "86401"], "up to 86400 (a day), not '86401'"),
        (
            ["balance", "--base-url", "ftp://x"],
            "error: --base-url (or STABILITY_BASE_URL) 'ftp://x' must be an absolute https:// "
            "URL, such as --base-url https://api.stability.ai.",
        ),
        (
            ["balance", "--base-url", "http://api.example.com"],
            "error: Refusing to send the API key over plain http:// to 'api.example.com': use "
            "an https:// URL, such as --base-url https://api.stability.ai.",
        ),
        (["balance", "--org", " "], "error: --org (or STABILITY_ORGANIZATION) is empty."),
        (
            ["balance", "--org", "org-1 "],
            "error: --org (or STABILITY_ORGANIZATION) 'org-1 ' has leading or trailing whitespace.",
        ),
    ],
)
def test_configuration_errors_are_exit_2_in_cli_terms(
    env: StandInServer, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith("stability-user: ") or err.startswith("usage: ")
    assert message in err
    for python_speak in ("api_key=", "allow_insecure_http", "httpx2.Timeout", "pass None"):
        assert python_speak not in err


def test_a_missing_key_says_which_variable_to_set(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STABILITY_BASE_URL", "https://api.stability.ai")
    assert run(capsys, "balance") == (
        2,
        "",
        "stability-user: error: STABILITY_API_KEY is not set: set it to your Stability API key.\n",
    )


def test_help_shows_the_effective_defaults_and_where_they_came_from(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out, _ = run(capsys, "balance", "--help")
    assert "(default: https://api.stability.ai)" in " ".join(out.split())
    monkeypatch.setenv("STABILITY_BASE_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("STABILITY_ORGANIZATION", "org-env")
    monkeypatch.setenv("STABILITY_API_VERSION", "v1alpha")
    _, out, _ = run(capsys, "balance", "--help")
    text = " ".join(out.split())
    assert "(default: http://127.0.0.1:9999, from STABILITY_BASE_URL)" in text
    assert "(default: org-env, from STABILITY_ORGANIZATION)" in text
    assert "(default: v1alpha, from STABILITY_API_VERSION)" in text
    assert "https://api.stability.ai)" not in text


def test_base_url_and_timeout_flags(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = StandInAPI.sample()
    monkeypatch.setenv("STABILITY_API_KEY", SAMPLE_API_KEY)
    with api.serve() as server:
        code, out, _ = run(capsys, "balance", "--base-url", server.url, "--timeout", "5")
    assert (code, out) == (0, "125.50 credits (default organization)\n")


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for text in ("account", "balances", "examples:", "exit status:", "STABILITY_API_KEY"):
        assert text in out
    code, out, _ = run(capsys, "--version")
    assert (code, out.strip()) == (0, f"stability-user {stability_user.__version__}")
    code, out, _ = run(capsys, "balance", "--help")
    assert "--min-credits" in out
    assert "--org" in out


def test_colour_only_on_a_terminal_and_never_with_no_color(
    env: StandInServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "\033[" not in run(capsys, "balances")[1]  # captured output is not a terminal
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    coloured = run(capsys, "balances")[1]
    assert coloured.startswith("\033[1mORGANIZATION")
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\033[" not in run(capsys, "balances")[1]


def installed_command() -> str:
    found = shutil.which("stability-user", path=str(Path(sys.executable).parent))
    assert found, "the stability-user entry point is installed with the package"
    return found


def test_the_installed_command_runs(standin_server: StandInServer) -> None:
    env = {
        **os.environ,
        "STABILITY_API_KEY": SAMPLE_API_KEY,
        "STABILITY_BASE_URL": standin_server.url,
    }
    result = subprocess.run(
        [installed_command(), "balances", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [row["credits"] for row in json.loads(result.stdout)] == [125.5, 42.0, 3.25]
    result = subprocess.run(
        [installed_command(), "balance", "--min-credits", "1000"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 3
    bad = {**env, "STABILITY_API_KEY": "nope"}
    result = subprocess.run(
        [installed_command(), "account"], env=bad, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    no_key = {k: v for k, v in env.items() if k != "STABILITY_API_KEY"}
    result = subprocess.run(
        [installed_command(), "account"], env=no_key, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "STABILITY_API_KEY" in result.stderr


def test_python_dash_m_runs_the_same_command(standin_server: StandInServer) -> None:
    env = {
        **os.environ,
        "STABILITY_API_KEY": SAMPLE_API_KEY,
        "STABILITY_BASE_URL": standin_server.url,
    }
    result = subprocess.run(
        [sys.executable, "-m", "stability_user", "balance"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "125.50 credits (default organization)\n")


def test_help_imports_neither_httpx2_nor_the_client() -> None:
    code = (
        "import sys\n"
        "from stability_user._cli import main\n"
        "try:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('httpx2', 'stability_user._client', 'stability_user_client') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def cli_process(url: str, *args: str, **options: object) -> subprocess.Popen[str]:
    env = {**os.environ, "STABILITY_API_KEY": SAMPLE_API_KEY, "STABILITY_BASE_URL": url}
    env.pop("NO_COLOR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "stability_user", *args],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        **options,  # type: ignore[call-overload]
    )


def test_ctrl_c_is_one_line_and_exit_130() -> None:
    import signal
    import time

    api = StandInAPI.sample()
    with api.serve(latency=2.0) as server:
        process = cli_process(server.url, "balances", stdout=subprocess.PIPE)
        deadline = time.monotonic() + 20
        # The call is under way: it has reached the server, which holds it for the latency
        # (api.requests records a request only as it is answered, when the command may be done).
        while not server.max_in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 130
    assert out == ""
    assert err == "stability-user: interrupted\n"


@pytest.mark.parametrize("reader", ["head -1", "true"])
def test_a_closed_pipe_is_not_a_traceback(env: StandInServer, reader: str) -> None:
    result = subprocess.run(
        f"{shlex.quote(sys.executable)} -m stability_user balances --json | {reader}",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr
    assert "Error" not in result.stderr
    if reader == "head -1":
        assert result.stdout == "[\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_one_line(env: StandInServer) -> None:
    with open("/dev/full", "w") as full:
        process = cli_process(env.url, "balances", stdout=full)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert err.startswith("stability-user: error: cannot write the output: ")
    assert "No space left on device" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("command", [["mcp", "--transport", "http"], ["exporter"]])
def test_a_port_in_use_says_it_could_not_listen(env: StandInServer, command: list[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        process = cli_process(env.url, *command, "--port", str(port), stdout=subprocess.PIPE)
        out, err = process.communicate(timeout=60)
    assert (process.returncode, out) == (1, "")
    assert err == (
        f"stability-user: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
@pytest.mark.parametrize("command", ["mcp", "exporter"])
def test_a_port_out_of_range_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], command: str, port: str
) -> None:
    code, out, err = run(capsys, command, "--port", port)
    assert (code, out) == (2, "")
    assert f"argument --port: must be a port from 0 (any free one) to 65535, not {port!r}" in err


# Text from outside (names, the API's messages), as every command shows it


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Ada's studio", "Ada's studio"),
        ("\x1b]0;pwned\x07Team", "\\x1b]0;pwned\\x07Team"),
        ("Two\nLines\r", "Two\\nLines\\r"),
        ("\u202eevil\u2028", "\\u202eevil\\u2028"),
        ("caf\u00e9 \u00a0 \u2603", "caf\u00e9 \u00a0 \u2603"),  # printable, if not ASCII
        ("\x9b31m", "\\x9b31m"),
        ("org-\ud800", "org-\\ud800"),  # a lone surrogate the API's JSON may hold
    ],
)
def test_printable_escapes_what_a_terminal_would_obey(text: str, shown: str) -> None:
    from stability_user._text import printable

    assert printable(text) == shown


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+1", "'+1"),
        ("-5 credits", "'-5 credits"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\\tx"),
        ("Lumen", "Lumen"),
        (None, ""),
        (-2.5, -2.5),
        (3, 3),
    ],
)
def test_csv_cells_are_inert_and_numbers_stay_numbers(value: object, cell: object) -> None:
    from stability_user._text import csv_cell

    assert csv_cell(value) == cell

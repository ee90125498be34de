"""The recipes of "Your balance at a glance" run as their shell or tool runs them.

bash, zsh and tmux for real, in a tmux terminal whose screen is read back; starship's module and
an agent CLI's status line as those tools start their commands (starship: the command on the
shell's stdin; the agent: a shell command with the session's JSON on stdin). Each runs the text
on the page as it stands, against the stand-in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from stability_user.testing import SAMPLE_API_KEY, StandInAPI
from support.deadline import wait_until
from support.doc_blocks import ROOT, Block, blocks
from support.terminal import Terminal

PAGE = ROOT / "docs" / "glance.md"
# The sample account's default organization, as the recipes print it.
CREDITS = r"125\.50 cr"


def recipe(heading: str) -> Block:
    """The first code block under the page's ``### heading``."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"### {heading}") + 1
    return next(block for block in blocks(PAGE) if block.line > start)


@pytest.fixture
def api() -> StandInAPI:
    return StandInAPI.sample()


@pytest.fixture
def shell_env(api: StandInAPI, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A user's environment: the key, the stand-in's URL, this environment's tools on PATH."""
    with api.serve() as server:
        yield {
            **os.environ,
            "STABILITY_API_KEY": SAMPLE_API_KEY,
            "STABILITY_BASE_URL": server.url,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(tmp_path),
            "NO_COLOR": "1",
        }


needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="apt-get install tmux")


@needs_tmux
def test_the_bash_prompt(shell_env: dict[str, str], tmp_path: Path, api: StandInAPI) -> None:
    block = recipe("bash")
    assert block.language == "bash"
    rc = tmp_path / "bashrc"
    rc.write_text(block.text)
    command = f"bash --noprofile --rcfile {rc} -i"
    with Terminal(command, env=shell_env, cwd=tmp_path, socket=tmp_path / "t.sock") as terminal:
        terminal.wait_for(rf"^{CREDITS} ~ [$#]", seconds=40)  # '#' for root
    assert [r.path for r in api.requests] == ["/v1/user/balance"]


@needs_tmux
def test_the_bash_prompt_never_waits_for_a_hanging_api(
    api: StandInAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stability_user._cache._store import Entry, entry_for, open_cache
    from stability_user.testing import StandInServer
    from support.held import HeldBalance

    rc = tmp_path / "bashrc"
    rc.write_text(recipe("bash").text)
    held = HeldBalance(api)  # accepts, and answers nothing while the test runs
    with StandInServer(held) as server:  # type: ignore[arg-type]
        env = {
            **os.environ,
            "STABILITY_API_KEY": SAMPLE_API_KEY,
            "STABILITY_BASE_URL": server.url,
            "STABILITY_CACHE_DIR": str(tmp_path / "cache"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(tmp_path),
        }
        # Ten minutes old: every prompt below finds it expired.
        open_cache(str(tmp_path / "cache")).write(
            entry_for(server.url, "v1", SAMPLE_API_KEY, None), Entry(125.5, time.time() - 600)
        )
        command = f"bash --noprofile --rcfile {rc} -i"
        try:
            with Terminal(command, env=env, cwd=tmp_path, socket=tmp_path / "t.sock") as terminal:
                prompt = re.compile(rf"^~?{CREDITS}(?: \(10m\))? ~ [$#]", re.MULTILINE)
                terminal.wait_for(prompt.pattern, seconds=40)
                for count in range(2, 6):
                    terminal.send_keys("Enter")
                    wait_until(
                        f"{count} prompts",
                        lambda n=count: len(prompt.findall(terminal.screen())) >= n,
                    )
                # The refresh behind the first prompt may reach the server only after the
                # prompts were drawn (a slow start on a loaded machine): wait for it.
                wait_until("the refresh behind the first prompt", lambda: held.held >= 1)
        finally:
            held.release()
    # One request in all, made behind the first prompt and never answered while they were
    # drawn: no prompt waited for the API (each would have asked, and waited, on its own).
    assert held.held == 1


@needs_tmux
@pytest.mark.skipif(shutil.which("zsh") is None, reason="apt-get install zsh")
def test_the_zsh_prompt(shell_env: dict[str, str], tmp_path: Path) -> None:
    block = recipe("zsh")
    assert block.language == "zsh"
    (tmp_path / ".zshrc").write_text(block.text)
    env = {**shell_env, "ZDOTDIR": str(tmp_path)}
    with Terminal("zsh -i", env=env, cwd=tmp_path, socket=tmp_path / "t.sock") as terminal:
        terminal.wait_for(rf"{CREDITS}\s*$", seconds=40)


@needs_tmux
def test_the_tmux_status_bar(shell_env: dict[str, str], tmp_path: Path) -> None:
    block = recipe("tmux")
    conf = tmp_path / "tmux.conf"
    conf.write_text(block.text)
    # The recipe's tmux, its client drawn in an outer terminal whose screen holds its status bar.
    inner = f"env -u TMUX tmux -S {tmp_path / 'inner.sock'} -f {conf} new-session 'sleep 600'"
    with Terminal(inner, env=shell_env, cwd=tmp_path, socket=tmp_path / "t.sock") as terminal:
        terminal.wait_for(rf"{CREDITS} \d\d:\d\d\s*$", seconds=40)
    subprocess.run(
        ["tmux", "-S", str(tmp_path / "inner.sock"), "kill-server"],
        check=False,
        capture_output=True,
    )


def test_the_starship_module(shell_env: dict[str, str], tmp_path: Path) -> None:
    module = tomllib.loads(recipe("starship").text)["custom"]["stability"]
    assert module["shell"] == ["sh"]

    def starship_runs(command: str) -> subprocess.CompletedProcess[str]:
        # starship starts the shell and writes the command to its stdin.
        return subprocess.run(
            module["shell"],
            input=command,
            env=shell_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=50,
            check=False,
        )

    assert starship_runs(module["when"]).returncode == 0
    shown = starship_runs(module["command"])
    assert (shown.returncode, shown.stdout, shown.stderr) == (0, "126 cr\n", "")
    without_key = {k: v for k, v in shell_env.items() if k != "STABILITY_API_KEY"}
    assert (
        subprocess.run(
            module["shell"], input=module["when"], env=without_key, text=True, check=False
        ).returncode
        != 0
    )


def test_the_agent_status_line(shell_env: dict[str, str], tmp_path: Path) -> None:
    settings = json.loads(recipe("An agent CLI's status line").text)["statusLine"]
    assert settings["type"] == "command"
    session = {"session_id": "abc123", "model": {"id": "m", "display_name": "M"}, "cwd": "/"}
    shown = subprocess.run(
        settings["command"],
        shell=True,
        input=json.dumps(session),
        env=shell_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert re.fullmatch(r"Stability 126 cr \(\d+s\)\n", shown.stdout)

"""A real terminal for tests: a tmux server of its own, a pane running a command, its screen.

The server has its own socket and no user configuration; it is killed on ``close()``. The
screen is read with ``capture-pane``, and ``wait_for`` polls it until a pattern shows, or
fails with what the screen held at the deadline.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self


class Terminal:
    """``command`` in a ``width`` x ``height`` tmux pane, in ``cwd``, with ``env``."""

    def __init__(
        self,
        command: str,
        *,
        env: dict[str, str],
        cwd: Path,
        socket: Path,
        width: int = 100,
        height: int = 10,
    ) -> None:
        # A pane's TERM is tmux's; the server's own environment is the one given.
        self._env = {k: v for k, v in env.items() if k not in {"TMUX", "TMUX_PANE"}}
        self._env.setdefault("TERM", "xterm-256color")
        self._tmux = ["tmux", "-S", str(socket), "-f", "/dev/null"]
        self._run("new-session", "-d", "-x", str(width), "-y", str(height), "-c", str(cwd), command)

    def _run(self, *args: str) -> str:
        return subprocess.run(
            [*self._tmux, *args],
            env=self._env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout

    def screen(self) -> str:
        """What the pane shows now, a line per row."""
        return self._run("capture-pane", "-p")

    def wait_for(self, pattern: str, seconds: float = 40.0) -> re.Match[str]:
        """The first match of ``pattern`` on the screen, once it shows."""
        deadline = time.monotonic() + seconds
        while True:
            screen = self.screen()
            found = re.search(pattern, screen, re.MULTILINE)
            if found:
                return found
            assert time.monotonic() < deadline, (
                f"{pattern!r} did not show within {seconds} s; the screen:\n{screen}"
            )
            time.sleep(0.1)

    def send_keys(self, *keys: str) -> None:
        """Type ``keys`` (tmux key names, e.g. ``C-c``) into the pane."""
        self._run("send-keys", *keys)

    def close(self) -> None:
        subprocess.run(
            [*self._tmux, "kill-server"], env=self._env, capture_output=True, check=False
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

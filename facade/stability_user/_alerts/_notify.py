"""Where ``stability-user watch`` sends its notices: Apprise's services, each on its own.

Apprise (the ``alerts`` extra) reaches 100+ services by URL (Slack, Discord, Teams, Telegram,
Matrix, ntfy, e-mail, webhooks). The URLs come from ``--notify``, an Apprise configuration file
(TEXT or YAML, tags included) and ``STABILITY_NOTIFY_URLS``; each is checked before anything is
read or sent. A URL carries secrets (tokens, passwords), so it is shown only in Apprise's privacy
form and stored only as a digest: each target is sent to, and remembered, on its own, so one
that fails is retried alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._exceptions import ConfigurationError

__all__ = [
    "ALERTS_INSTALL",
    "NOTIFY_URLS_ENV",
    "Delivery",
    "Target",
    "load_targets",
]

ALERTS_INSTALL = "pip install 'stability-user[alerts]'"
NOTIFY_URLS_ENV = "STABILITY_NOTIFY_URLS"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What came of sending one notice to one target: ``error`` is the service's own words."""

    target: str
    ok: bool
    error: str | None = None


class Target:
    """One service to notify: ``shown`` is its URL in Apprise's privacy form, ``id`` a digest
    of the whole URL (the alert state's name for it)."""

    __slots__ = ("_server", "id", "shown")

    def __init__(self, server: Any) -> None:
        from .._cache._store import _sha256

        self._server = server
        self.shown: str = server.url(privacy=True)
        self.id: str = _sha256(server.url().encode()).hexdigest()[:32]

    def send(self, title: str, body: str, kind: str) -> Delivery:
        """Send a notice (``kind``: ``info``, ``warning``, ``failure``, ``success``)."""
        import apprise

        one = apprise.Apprise()
        one.add(self._server)
        result = one.notify(body, title=title, notify_type=kind, body_format="text")
        if result:
            return Delivery(self.shown, True)
        words = [
            entry.message
            for outcome in result.results
            for entry in outcome.logs()
            if entry.level in ("WARNING", "ERROR")
        ]
        return Delivery(self.shown, False, "; ".join(words) or "the service did not take it")


def load_targets(
    urls: Sequence[str], config_file: str | None, environ: Mapping[str, str], tags: Sequence[str]
) -> list[Target]:
    """The targets asked for, in order, each checked.

    Raises:
        ConfigurationError: Apprise is not installed, a URL's scheme is unknown or the URL
            malformed, or the configuration file cannot be read or holds no URL. The message
            never shows a URL past its scheme.
    """
    try:
        import apprise
    except ImportError:
        message = f"watch needs Apprise: {ALERTS_INSTALL}"
        raise ConfigurationError(message, cli_message=message) from None
    servers = apprise.Apprise()
    listed = [*urls, *environ.get(NOTIFY_URLS_ENV, "").replace(",", " ").split()]
    for url in listed:
        server = apprise.Apprise.instantiate(url)
        if server is None:
            scheme = url.partition("://")[0] if "://" in url else "(no scheme)"
            message = (
                f"not a URL Apprise can send to: {scheme}://... (an unknown scheme, or a URL "
                "malformed for its service)"
            )
            raise ConfigurationError(message, cli_message=f"--notify: {message}")
        servers.add(server)
    if config_file is not None:
        _readable(config_file)
        config = apprise.AppriseConfig()
        config.add(os.path.abspath(config_file))
        before = len(servers)
        servers.add(config)
        if len(list(servers.find("all"))) == before:
            message = f"{config_file}: no Apprise URL could be read from it"
            raise ConfigurationError(message, cli_message=f"--notify-config {message}")
    chosen = servers.find(tag=list(tags)) if tags else servers.find("all")
    return [Target(server) for server in chosen]


def _readable(path: str) -> None:
    try:
        with open(path, "rb") as file:
            file.read(1)
    except OSError as error:
        message = f"{path}: {error.strerror or error}"
        raise ConfigurationError(message, cli_message=f"--notify-config {message}") from error
